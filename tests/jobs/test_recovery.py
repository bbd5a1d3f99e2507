"""Jobs left behind by a dead worker or a lost broker queue are sent again or failed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.recovery import recover_abandoned_jobs

pytestmark = pytest.mark.django_db


def _job(status, age_seconds, attempts=0, task_name=""):
    long_ago = timezone.now() - timedelta(seconds=age_seconds)
    return Job.objects.create(
        kind=Job.Kind.SYNC,
        status=status,
        attempts=attempts,
        task_name=task_name,
        created_at=long_ago,
        heartbeat_at=long_ago if status == Job.Status.RUNNING else None,
    )


def test_a_job_with_a_fresh_heartbeat_cannot_be_claimed_twice():
    job = _job(Job.Status.QUEUED, 0)

    assert job.start() is True
    assert Job.objects.get(pk=job.pk).start() is False


def test_a_job_whose_worker_died_can_be_claimed_again(settings):
    job = _job(Job.Status.RUNNING, settings.REGUI_JOB_STALE_SECONDS + 5, attempts=1)

    assert job.start() is True
    job.refresh_from_db()
    assert job.attempts == 2


def test_a_finished_job_is_never_claimed():
    job = _job(Job.Status.SUCCEEDED, 0)

    assert job.start() is False


def test_abandoned_job_without_attempts_left_is_failed_with_a_reason(settings):
    job = _job(Job.Status.RUNNING, settings.REGUI_JOB_STALE_SECONDS + 5, attempts=Job.MAX_ATTEMPTS)

    assert recover_abandoned_jobs() == {"resent": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("abandoned: no worker reported")


def test_fresh_jobs_are_left_alone():
    _job(Job.Status.RUNNING, 1, attempts=1)
    _job(Job.Status.QUEUED, 1)

    assert recover_abandoned_jobs() == {"resent": 0, "failed": 0}
