"""Real Celery workers killed mid-job, and a broker that loses its queue.

Each test uses a private Redis as the broker (tests/support/worker_fixtures.py) and real
worker processes, so a worker can be SIGKILLed and Redis restarted without touching anything
else.
"""

import signal
import time

import pytest

from jobs.models import Job
from jobs.recovery import recover_abandoned_jobs
from registries.models import Registry, Tag
from registries.tasks import sync_registry_task
from scanning import services
from tests.support.images import push_many_tags
from tests.support.processes import start_worker, stop
from tests.support.scanning_fixtures import fixture_image, push_and_cache

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPOSITORIES, TAGS_EACH = 8, 15
STALE_SECONDS = 3


@pytest.fixture
def crash_env(worker_env):
    # Redeliver unacknowledged tasks and declare heartbeats dead within seconds, not hours.
    return worker_env(REGUI_BROKER_VISIBILITY_TIMEOUT=2, REGUI_JOB_STALE_SECONDS=STALE_SECONDS)


@pytest.fixture
def slow_registry(fresh_registry, fault_proxy_factory):
    for number in range(REPOSITORIES):
        push_many_tags(fresh_registry.url, f"crash/app{number}", TAGS_EACH)
    proxy = fault_proxy_factory(fresh_registry)
    proxy.latency(0.05)  # long enough a sync to kill a worker in the middle of it
    return Registry.objects.create(name="slow", url=proxy.url, max_concurrency=2)


def _sync_job(registry):
    return Job.objects.create(
        kind=Job.Kind.SYNC, registry=registry, task_name=sync_registry_task.name
    )


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_sync_survives_a_worker_killed_in_the_middle(slow_registry, crash_env, tmp_path):
    job = _sync_job(slow_registry)
    sync_registry_task.delay(job.pk)
    first = start_worker(crash_env, "first", tmp_path / "first.log")
    try:
        _wait_for(
            lambda: Job.objects.get(pk=job.pk).progress_done >= 2, 60, "the sync to be underway"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # abandoned mid-way

        second = start_worker(crash_env, "second", tmp_path / "second.log")
        try:
            _wait_for(
                lambda: Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED,
                120,
                "the redelivered sync to finish",
            )
        finally:
            stop(second)
    finally:
        stop(first)

    job.refresh_from_db()
    assert job.attempts >= 2
    assert Tag.objects.filter(repository__registry=slow_registry).count() == (
        REPOSITORIES * TAGS_EACH
    )


def test_jobs_queued_when_redis_restarts_are_sent_again_from_their_rows(
    slow_registry, celery_broker, crash_env, tmp_path, settings
):
    job = _sync_job(slow_registry)
    sync_registry_task.delay(job.pk)
    celery_broker.stop()  # this Redis keeps nothing on disk: the queued task is gone
    celery_broker.start()

    settings.REGUI_JOB_STALE_SECONDS = STALE_SECONDS
    time.sleep(STALE_SECONDS + 0.5)
    assert recover_abandoned_jobs() == {"resent": 1, "failed": 0}

    worker = start_worker(crash_env, "after-restart", tmp_path / "worker.log")
    try:
        _wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED,
            120,
            "the re-sent sync to finish",
        )
    finally:
        stop(worker)


def test_scan_survives_a_worker_killed_in_the_middle(
    trivy_settings, crash_env, registry, fault_proxy, live_registry_a, repo_name, tmp_path
):
    live_registry_a.url = fault_proxy.url
    live_registry_a.save()
    fault_proxy.latency(0.3)  # Trivy's pulls take long enough to kill its worker mid-scan
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, live_registry_a, repo_name, "v1", image)
    env = {
        **crash_env,
        "REGUI_TRIVY_BIN": trivy_settings.REGUI_TRIVY_BIN,
        "REGUI_TRIVY_CACHE_DIR": trivy_settings.REGUI_TRIVY_CACHE_DIR,
        "REGUI_TRIVY_SKIP_DB_UPDATE": "true",
        "REGUI_TRIVY_OFFLINE_SCAN": "true",
    }
    job = services.request_scan(live_registry_a, manifest, repository=repo_name)
    first = start_worker(env, "first", tmp_path / "first.log")
    try:
        _wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING, 60, "the scan start"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(env, "second", tmp_path / "second.log")
        try:
            _wait_for(lambda: not Job.objects.get(pk=job.pk).is_active, 120, "the redelivered scan")
        finally:
            stop(second)
    finally:
        stop(first)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempts >= 2
    assert services.latest_scan(image.digest).total == 6
