"""Real Celery workers killed mid-job, and a broker that loses its queue.

Each test uses a private Redis as the broker and real worker processes against the test
database, so a worker can be SIGKILLed and Redis restarted without touching anything else.
"""

import signal
import time

import pytest
from django.db import connection

from jobs.models import Job
from jobs.recovery import recover_abandoned_jobs
from registries.models import Registry, Tag
from registries.tasks import sync_registry_task
from regui.celery import app as celery_app
from tests.support.images import push_many_tags
from tests.support.processes import PrivateRedis, regui_env, start_worker, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPOSITORIES, TAGS_EACH = 8, 15
STALE_SECONDS = 3


@pytest.fixture
def broker(monkeypatch):
    redis = PrivateRedis()
    redis.start()
    # This process publishes to the private broker instead of running tasks inline.
    before = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=redis.url)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    yield redis
    celery_app.pool.force_close_all()
    celery_app.conf.update(before)
    redis.stop()


@pytest.fixture
def worker_env(broker):
    db = connection.settings_dict
    return regui_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=broker.url,
        REGUI_BROKER_VISIBILITY_TIMEOUT=2,
        REGUI_JOB_STALE_SECONDS=STALE_SECONDS,
    )


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


def test_sync_survives_a_worker_killed_in_the_middle(slow_registry, worker_env, tmp_path):
    job = _sync_job(slow_registry)
    sync_registry_task.delay(job.pk)
    first = start_worker(worker_env, "first", tmp_path / "first.log")
    try:
        _wait_for(
            lambda: Job.objects.get(pk=job.pk).progress_done >= 2, 60, "the sync to be underway"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING  # abandoned mid-way

        second = start_worker(worker_env, "second", tmp_path / "second.log")
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
    slow_registry, broker, worker_env, tmp_path, settings
):
    job = _sync_job(slow_registry)
    sync_registry_task.delay(job.pk)
    broker.stop()  # this Redis keeps nothing on disk: the queued task is gone
    broker.start()

    settings.REGUI_JOB_STALE_SECONDS = STALE_SECONDS
    time.sleep(STALE_SECONDS + 0.5)
    assert recover_abandoned_jobs() == {"resent": 1, "failed": 0}

    worker = start_worker(worker_env, "after-restart", tmp_path / "worker.log")
    try:
        _wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED,
            120,
            "the re-sent sync to finish",
        )
    finally:
        stop(worker)
