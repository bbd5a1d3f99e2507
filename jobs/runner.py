"""The one body of every job task: claim the row, run the work, record how it ended.

Tasks stay thin: `return run_job(self, job_id, work, retry_on=..., fail_on=...)`, where
`work(job)` returns the result dict (and reports progress on the job as it goes). Errors in
`retry_on` are tried again with backoff, up to Job.MAX_ATTEMPTS attempts; errors in `fail_on`
are expected failures whose message is the job's error; anything else is a bug, logged with
its traceback.
"""

import logging

from celery.exceptions import Retry
from django.conf import settings

from jobs.models import Job

logger = logging.getLogger(__name__)

RETRY_BACKOFF_SECONDS = (10, 60)  # before the 2nd and 3rd attempts


def run_job(task, job_id, work, *, retry_on=(), fail_on=()):
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return None  # the job (or its registry) was deleted meanwhile
    if not job.start():
        if job.is_active:
            # Another worker holds it with a live heartbeat; look again once that would be stale.
            raise task.retry(countdown=settings.REGUI_JOB_STALE_SECONDS, max_retries=None)
        return None  # already finished: a duplicate delivery
    try:
        result = work(job)
    except Retry:
        raise
    except retry_on as exc:
        return _retry_or_fail(task, job, exc)
    except fail_on as exc:
        logger.warning("%s failed: %s", job, exc)
        job.fail(exc)
        return None
    except Exception as exc:
        logger.exception("%s failed", job)
        job.fail(f"Internal error ({exc.__class__.__name__}); the worker log has the details.")
        return None
    job.succeed(result)
    return None


def _retry_or_fail(task, job, exc):
    attempt = task.request.retries
    if attempt >= len(RETRY_BACKOFF_SECONDS):
        job.fail(f"{exc} (gave up after {attempt + 1} attempts)")
        return
    job.status, job.error = Job.Status.QUEUED, f"{exc}; retrying"
    job.save(update_fields=["status", "error"])
    logger.warning("%s: %s; retry %d", job, exc, attempt + 1)
    raise task.retry(countdown=RETRY_BACKOFF_SECONDS[attempt], exc=exc, max_retries=None)
