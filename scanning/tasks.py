"""Celery tasks: thin wrappers that receive job ids and call scanning.services."""

import os
import re
import socket

from billiard.process import current_process
from celery import shared_task

from registries.models import Registry
from scanning import services

RETRY_DELAY_SECONDS = 30


def worker_name(task):
    """A stable name per worker process, so each keeps one Trivy cache dir of its own."""
    node = task.request.hostname or socket.gethostname()
    process = getattr(current_process(), "index", None)
    slot = process if process is not None else os.getpid()
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{node}-{slot}")


@shared_task(bind=True)
def run_scan(self, job_id):
    outcome = services.run_scan_job(job_id, worker_name=worker_name(self))
    if outcome is services.Outcome.RETRY:
        run_scan.apply_async((job_id,), countdown=RETRY_DELAY_SECONDS)


@shared_task(bind=True)
def rescan_images(self):
    """Scheduled: refresh the DB date, then queue stale and unscanned images per registry."""
    services.refresh_scanner_state(worker_name=worker_name(self))
    services.queue_scheduled_rescans(Registry.objects.all())
