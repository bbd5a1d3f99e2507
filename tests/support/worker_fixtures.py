"""Fixtures for tests that need real Celery workers instead of eager tasks.

`celery_broker`: a private Redis that this test process publishes to (tasks are no longer
run inline); `worker_env(**extra)`: the environment of a worker process that uses that broker
and the test database. Start workers with tests.support.processes.start_worker.
"""

import pytest
from django.db import connection

from regui.celery import app as celery_app
from tests.support.processes import PrivateRedis, regui_env


@pytest.fixture
def celery_broker(monkeypatch):
    redis = PrivateRedis()
    redis.start()
    before = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    celery_app.conf.update(task_always_eager=False, broker_url=redis.url)
    # Fresh pools, so nothing published here goes to a broker of an earlier test.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    yield redis
    celery_app.pool.force_close_all()
    celery_app.conf.update(before)
    redis.stop()


def database_url_for_tests():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker_env(celery_broker):
    def make(**extra):
        return regui_env(
            DATABASE_URL=database_url_for_tests(), REDIS_URL=celery_broker.url, **extra
        )

    return make
