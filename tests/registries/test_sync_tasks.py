"""Sync jobs: created first, enqueued on commit, one per registry at a time, dispatched by beat."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.runner import RETRY_BACKOFF_SECONDS
from registries import sync, tasks
from registries.models import Registry, Tag
from tests.support import images

pytestmark = pytest.mark.django_db


def test_request_sync_runs_the_job_and_records_progress_and_counts(
    registry, registry_row, repo_name, django_capture_on_commit_callbacks
):
    images.push_many_tags(registry.url, repo_name, 3)
    row = registry_row(registry, repositories=[repo_name])

    with django_capture_on_commit_callbacks(execute=True):
        job = sync.request_sync(row)
        assert job.status == Job.Status.QUEUED

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.kind, job.registry, job.task_name) == (
        "sync",
        row,
        "registries.tasks.sync_registry_task",
    )
    assert (job.progress_done, job.progress_total) == (1, 1)
    assert job.result["added"] == 3
    assert job.result["requests"] == 1 + 3 * 2  # tag list, then manifest + config per tag
    assert job.result["duration_seconds"] >= 0
    assert job.finished_at is not None
    assert Tag.objects.filter(repository__registry=row).count() == 3


def test_a_second_request_returns_the_active_job(registry_row, registry):
    row = registry_row(registry)
    first = sync.request_sync(row)  # not committed: stays queued in this test
    assert sync.request_sync(row) == first
    assert Job.objects.filter(kind=Job.Kind.SYNC, registry=row).count() == 1


def test_a_failing_registry_is_retried_then_the_job_fails(
    fault_proxy, registry_row, repo_name, registry, django_capture_on_commit_callbacks
):
    images.push_image(registry.url, repo_name, "1.0", images.build_image())
    fault_proxy.error(500, path="/tags/list")
    row = registry_row(fault_proxy.url, repositories=[repo_name])

    with django_capture_on_commit_callbacks(execute=True):
        job = sync.request_sync(row)

    job.refresh_from_db()
    row.refresh_from_db()
    assert job.status == Job.Status.FAILED
    attempts = len(RETRY_BACKOFF_SECONDS) + 1  # eager retries do not wait
    assert job.attempts == attempts
    assert "HTTP 500" in job.error and f"gave up after {attempts} attempts" in job.error
    assert row.health == Registry.Health.ERROR
    assert "fault injected by test proxy" in row.health_message


def test_a_protocol_error_fails_at_once(
    fault_proxy, registry_row, repo_name, registry, django_capture_on_commit_callbacks
):
    images.push_image(registry.url, repo_name, "1.0", images.build_image())
    fault_proxy.malformed_json(path="/tags/list")
    row = registry_row(fault_proxy.url, repositories=[repo_name])

    with django_capture_on_commit_callbacks(execute=True):
        job = sync.request_sync(row)

    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.FAILED, 1)
    assert "malformed JSON" in job.error


def test_dispatcher_starts_due_syncs_only(registry_row, registry):
    now = timezone.now()
    never = registry_row(registry)
    due = registry_row(
        registry, sync_interval_minutes=10, last_synced_at=now - timedelta(minutes=11)
    )
    fresh = registry_row(
        registry, sync_interval_minutes=10, last_synced_at=now - timedelta(minutes=2)
    )
    manual = registry_row(registry, sync_interval_minutes=0)
    busy = registry_row(registry, sync_interval_minutes=10)
    busy_job = sync.request_sync(busy)
    failing = registry_row(registry, sync_interval_minutes=10)
    Job.objects.create(kind=Job.Kind.SYNC, registry=failing, status=Job.Status.FAILED)

    started = tasks.dispatch_due_syncs()

    jobs = Job.objects.filter(pk__in=started)
    assert {job.registry for job in jobs} == {never, due}
    assert not Job.objects.filter(registry__in=[fresh, manual, failing], status=Job.Status.QUEUED)
    assert list(Job.objects.filter(registry=busy)) == [busy_job]
    assert tasks.dispatch_due_syncs() == []  # the jobs just started are still active
