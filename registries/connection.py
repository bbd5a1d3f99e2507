"""Test a registry's connection and keep what it revealed on the registry row."""

from django.utils import timezone

from audit.log import record
from audit.models import AuditEvent
from registries.client import ConnectionReport, RegistryClient, RegistryError
from registries.crypto import SecretDecryptionError

# Someone is waiting for the answer in the browser: fail fast rather than at sync timeouts.
PROBE_CONNECT_TIMEOUT_SECONDS = 3.0
PROBE_READ_TIMEOUT_SECONDS = 10.0


def probe(registry, *, request=None) -> ConnectionReport:
    """Probe the registry, store its health and detected capabilities, audit, and return the
    report."""
    try:
        with RegistryClient(
            registry,
            connect_timeout=PROBE_CONNECT_TIMEOUT_SECONDS,
            read_timeout=PROBE_READ_TIMEOUT_SECONDS,
        ) as client:
            report = client.probe()
    except (RegistryError, SecretDecryptionError) as error:
        report = ConnectionReport(url=registry.url, error=str(error))
    store_report(registry, report)
    record(
        "registry.connection_tested",
        request=request,
        registry=registry,
        target=registry.name,
        result=AuditEvent.Result.OK if report.ok else AuditEvent.Result.FAILED,
        message=report.summary(),
    )
    return report


def store_report(registry, report):
    registry.health = registry.Health.OK if report.ok else registry.Health.ERROR
    registry.health_message = "" if report.ok else report.summary()[:2000]
    registry.health_checked_at = timezone.now()
    fields = ["health", "health_message", "health_checked_at"]
    if report.reachable and report.auth_scheme:
        registry.auth_scheme = report.auth_scheme
        fields.append("auth_scheme")
    if report.delete_enabled is not None:
        registry.delete_enabled = report.delete_enabled
        fields.append("delete_enabled")
    registry.save(update_fields=fields)


def message_level(report):
    """ "success", "warning" or "error": how the admin should show the report."""
    if not report.ok:
        return "error"
    if report.catalog_ok is False or report.notes:
        return "warning"
    return "success"
