"""Celery tasks: thin wrappers that receive job ids and call scanning.services."""

import functools
import os
import re
import socket

from billiard.process import current_process
from celery import shared_task

from jobs.runner import run_job
from registries.models import Registry
from scanning import services, trivy


def worker_name(task):
    """A stable name per worker process, so each keeps one Trivy cache dir of its own."""
    node = task.request.hostname or socket.gethostname()
    process = getattr(current_process(), "index", None)
    slot = process if process is not None else os.getpid()
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{node}-{slot}")


@shared_task(bind=True, ignore_result=True)
def run_scan(self, job_id):
    work = functools.partial(services.run_scan_job, worker_name=worker_name(self))
    return run_job(
        self, job_id, work, retry_on=(trivy.TrivyTransientError,), fail_on=(trivy.TrivyError,)
    )


@shared_task(bind=True)
def rescan_images(self):
    """Scheduled: refresh the DB date, then queue stale and unscanned images per registry."""
    services.refresh_scanner_state(worker_name=worker_name(self))
    services.queue_scheduled_rescans(Registry.objects.all())
