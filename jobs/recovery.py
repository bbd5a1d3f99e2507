"""Jobs that no worker is running any more: sent again, or failed with a reason.

A worker killed mid-job leaves its row "running" with a heartbeat that stops moving; a
broker that lost its queue leaves rows "queued" forever. Both are found here by age.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from regui.celery import app as celery_app

logger = logging.getLogger(__name__)


def _send_again(job):
    if not job.task_name:
        return False
    celery_app.send_task(job.task_name, args=[job.pk])
    return True


def recover_abandoned_jobs(now=None):
    """Resend queued jobs the broker lost and running jobs whose worker died; fail the rest."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.REGUI_JOB_STALE_SECONDS)
    lost = Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=stale)
    abandoned = Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=stale)
    resent = failed = 0
    for job in [*lost, *abandoned]:
        if job.attempts < Job.MAX_ATTEMPTS and _send_again(job):
            resent += 1
            continue
        job.fail(
            f"abandoned: no worker reported on this job since "
            f"{(job.heartbeat_at or job.created_at):%Y-%m-%d %H:%M:%S} UTC "
            f"(attempt {job.attempts} of {Job.MAX_ATTEMPTS})"
        )
        failed += 1
    if resent or failed:
        logger.warning("job recovery: %d sent again, %d marked failed", resent, failed)
    return {"resent": resent, "failed": failed}
