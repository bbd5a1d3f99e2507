"""Prometheus metrics at /metrics: django-prometheus's, plus RegUI's own read from the database.

RegUI's gauges are computed at scrape time from the rows, so every web process reports the
same numbers whichever one is scraped.
"""

import ipaddress
import secrets

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponseForbidden
from django.utils import timezone
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY


class RegUICollector:
    def collect(self):
        from jobs.models import Job
        from registries.models import Registry

        healthy = GaugeMetricFamily("regui_registries", "Registries by health", labels=["health"])
        for row in Registry.objects.values("health").annotate(n=Count("id")):
            healthy.add_metric([row["health"]], row["n"])
        yield healthy

        sync_age = GaugeMetricFamily(
            "regui_registry_last_sync_age_seconds",
            "Seconds since the last successful sync",
            labels=["registry"],
        )
        now = timezone.now()
        for name, synced in Registry.objects.exclude(last_synced_at=None).values_list(
            "name", "last_synced_at"
        ):
            sync_age.add_metric([name], (now - synced).total_seconds())
        yield sync_age

        jobs = GaugeMetricFamily("regui_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for row in Job.objects.values("kind", "status").annotate(n=Count("id")):
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs

        queue = GaugeMetricFamily("regui_scan_queue_length", "Scans waiting for a worker")
        queue.add_metric([], Job.objects.filter(kind=Job.Kind.SCAN, status="queued").count())
        yield queue

        yield from findings_by_severity()

    def describe(self):
        return []  # collected lazily: no database access at registration time


def findings_by_severity():
    from scanning.services import findings_by_severity as counts

    family = GaugeMetricFamily(
        "regui_findings", "Findings of the latest scans, by severity", labels=["severity"]
    )
    for severity, n in counts().items():
        family.add_metric([severity], n)
    yield family


REGISTRY.register(RegUICollector())


def _allowed(request):
    token = settings.REGUI_METRICS_TOKEN
    if token:
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return secrets.compare_digest(offered.encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.REGUI_METRICS_ALLOWED_NETWORKS)


def metrics(request):
    """Prometheus text format; a bearer token or an allowed address is required."""
    if not _allowed(request):
        return HttpResponseForbidden(
            "metrics: set REGUI_METRICS_TOKEN or scrape from an allowed address\n"
        )
    return ExportToDjangoView(request)
