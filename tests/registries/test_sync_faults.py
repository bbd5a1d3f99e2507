"""A sync that fails part-way: the job fails, the registry says why, and no cached row is lost.

Every fault comes from a proxy in front of the real registry (tests/support/fault_proxy.py).
"""

import threading

import pytest

from jobs.models import Job
from registries import sync
from registries.client import ProtocolError, RegistryUnavailable
from registries.models import Manifest, Registry, Repository, Tag
from tests.support import images

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(fresh_registry, fault_proxy_factory, registry_row):
    """A registry of two repositories, synced once through a (still clean) fault proxy."""
    for name in ("team/api", "team/web"):
        images.push_many_tags(fresh_registry.url, name, 4)
    proxy = fault_proxy_factory(fresh_registry)
    row = registry_row(proxy.url, max_concurrency=2)
    sync.sync_registry(row)
    # Changes the failing sync will not get to store.
    images.push_image(fresh_registry.url, "team/api", "new", images.build_image(media="docker"))
    images.push_image(fresh_registry.url, "team/web", "new", images.build_image(media="docker"))
    proxy.reset_counts()
    return fresh_registry, proxy, row


def cached_rows(row):
    return {
        "repositories": set(Repository.objects.filter(registry=row).values_list("name", "id")),
        "tags": set(Tag.objects.filter(repository__registry=row).values_list("id", "manifest_id")),
        "manifests": set(Manifest.objects.filter(registry=row).values_list("id", flat=True)),
    }


def sync_expecting(row, error_type):
    job = Job.objects.create(kind=Job.Kind.SYNC, registry=row)
    with pytest.raises(error_type) as caught:
        sync.sync_registry(row, job)
    row.refresh_from_db()
    assert row.health == Registry.Health.ERROR
    assert row.health_message == f"Sync failed: {caught.value}"
    return str(caught.value), job


def test_server_errors(synced):
    _, proxy, row = synced
    before = cached_rows(row)
    proxy.error(500, path="/manifests/new")

    message, job = sync_expecting(row, RegistryUnavailable)

    assert "HTTP 500" in message
    assert "fault injected by test proxy" in message  # the registry's own words
    assert cached_rows(row) == before
    assert job.result["requests"] >= 1


def test_hang_past_the_read_timeout(synced, settings):
    _, proxy, row = synced
    before = cached_rows(row)
    settings.REGUI_REGISTRY_READ_TIMEOUT = 0.5
    proxy.hang(5, path="/tags/list")

    message, _ = sync_expecting(row, RegistryUnavailable)

    assert "did not answer within 0.5 s" in message
    assert cached_rows(row) == before


def test_malformed_json(synced):
    _, proxy, row = synced
    before = cached_rows(row)
    proxy.malformed_json(path="/_catalog")

    message, _ = sync_expecting(row, ProtocolError)

    assert "malformed JSON" in message
    assert cached_rows(row) == before


def test_oversized_body(synced, settings):
    _, proxy, row = synced
    before = cached_rows(row)
    settings.REGUI_REGISTRY_MAX_BODY_BYTES = 256 * 1024
    proxy.oversized(20 * 1024 * 1024, path="/tags/list", declare_length=False)

    message, _ = sync_expecting(row, ProtocolError)

    assert "more than 262144 bytes" in message
    assert cached_rows(row) == before


def test_registry_stopped_mid_sync(synced, settings):
    server, proxy, row = synced
    before = cached_rows(row)
    settings.REGUI_REGISTRY_MAX_RETRY_WAIT = 0.1
    stopped = threading.Event()

    # The first repository's new tag is being fetched when the registry goes away.
    def stop_registry():
        server.stop()
        stopped.set()

    proxy.latency(1.0, path="/manifests/new", times=1)
    timer = threading.Timer(0.3, stop_registry)
    timer.start()
    try:
        message, _ = sync_expecting(row, RegistryUnavailable)
    finally:
        timer.join()
        stopped.wait(10)
        server.start()

    assert "502" in message or "cannot connect" in message
    after = cached_rows(row)
    # Nothing previously cached is gone; at most a repository finished before the stop.
    assert before["repositories"] <= after["repositories"]
    assert before["manifests"] <= after["manifests"]
    assert len(after["tags"]) >= len(before["tags"])


def test_a_later_sync_heals_the_registry(synced):
    _, proxy, row = synced
    proxy.error(500, path="/manifests/new")
    sync_expecting(row, RegistryUnavailable)
    proxy.clear()

    result = sync.sync_registry(row)

    row.refresh_from_db()
    assert row.health == Registry.Health.OK
    assert row.health_message == ""
    assert result["added"] == 2
    assert Tag.objects.filter(repository__registry=row, name="new").count() == 2
