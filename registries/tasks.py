"""Celery tasks for registries: thin wrappers around registries.sync."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from jobs.models import Job
from jobs.runner import run_job
from registries import cleanup, sync
from registries.client import RegistryError, RegistryUnavailable
from registries.models import Registry


@shared_task(bind=True, ignore_result=True)
def sync_registry_task(self, job_id):
    # A registry that is down or overloaded may be back soon; anything else fails the job.
    return run_job(
        self, job_id, sync.run_sync_job, retry_on=(RegistryUnavailable,), fail_on=(RegistryError,)
    )


@shared_task(ignore_result=True)
def dispatch_due_syncs():
    """Start a sync of each registry whose interval has passed since its last sync job began."""
    now = timezone.now()
    started = []
    for registry in Registry.objects.filter(sync_interval_minutes__gt=0):
        interval = timedelta(minutes=registry.sync_interval_minutes)
        # Counting from the last job, not the last success, keeps a failing registry from
        # being retried every minute; the job's own retries cover transient failures.
        recent = Job.objects.filter(
            kind=Job.Kind.SYNC, registry=registry, created_at__gt=now - interval
        )
        if registry.last_synced_at and registry.last_synced_at > now - interval:
            continue
        if recent.exists():
            continue
        started.append(sync.request_sync(registry).pk)
    return started


@shared_task(bind=True, ignore_result=True)
def cleanup_registry_task(self, job_id):
    # No automatic retry: a half-done cleanup is reported per tag, never silently repeated.
    return run_job(self, job_id, cleanup.run_cleanup_job)
