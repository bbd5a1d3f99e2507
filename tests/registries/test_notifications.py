"""Registry notifications: push and delete events update the cache at once, without a sync."""

import json
import time

import pytest
from django.urls import reverse

from registries import sync
from registries.models import Manifest, Registry, Repository, Tag
from tests.support import images

ENVELOPE_TYPE = "application/vnd.docker.distribution.events.v1+json"
SECRET_WAIT_SECONDS = 20


def envelope(*events):
    return json.dumps({"events": list(events)})


def event(action, repository, *, tag="", digest="", media_type=images.OCI_MANIFEST):
    target = {"repository": repository, "mediaType": media_type, "digest": digest}
    if tag:
        target["tag"] = tag
    return {"id": "e1", "action": action, "target": target}


@pytest.fixture
def notified_registry(registry, registry_row):
    """A Registry row for the session registry, and its notification secret."""
    row = registry_row(registry)
    secret = row.new_notification_secret()
    row.save()
    return row, secret


def post_events(client, row, body, secret, **headers):
    url = reverse("registry-events", args=[row.pk])
    if secret is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {secret}")
    return client.post(url, data=body, content_type=ENVELOPE_TYPE, **headers)


@pytest.mark.django_db
def test_push_event_adds_the_tag_without_a_sync(client, notified_registry, registry, repo_name):
    row, secret = notified_registry
    index = images.build_platform_index()
    digest = images.push_index(registry.url, repo_name, "2.0", index)

    answer = post_events(
        client, row, envelope(event("push", repo_name, tag="2.0", digest=digest)), secret
    )

    assert answer.status_code == 200, answer.content
    assert answer.json()["added"] == 1
    tag = Tag.objects.select_related("manifest", "repository").get(
        repository__registry=row, repository__name=repo_name, name="2.0"
    )
    assert tag.manifest.digest == index.digest
    assert tag.manifest.platforms == ["linux/amd64", "linux/arm64/v8"]
    assert tag.repository.tag_count == 1
    assert tag.repository.size_bytes == tag.manifest.size_bytes
    assert Manifest.objects.filter(registry=row).count() == 5  # index, 2 platforms, 2 attestations


@pytest.mark.django_db
def test_delete_event_drops_every_tag_of_the_digest(client, notified_registry, registry, repo_name):
    row, secret = notified_registry
    image = images.build_image()
    for tag in ("1.0", "latest"):
        images.push_image(registry.url, repo_name, tag, image)
    kept = images.build_image(created=None, labels={"kept": "yes"})
    images.push_image(registry.url, repo_name, "kept", kept)
    row.catalog_mode, row.repository_list = Registry.CatalogMode.LIST, repo_name
    row.save()
    sync.sync_registry(row)
    images.delete_manifest(registry.url, repo_name, image.digest).raise_for_status()

    answer = post_events(
        client, row, envelope(event("delete", repo_name, digest=image.digest)), secret
    )

    assert answer.status_code == 200, answer.content
    assert answer.json()["removed"] == 2
    repository = Repository.objects.get(registry=row, name=repo_name)
    assert list(repository.tags.values_list("name", flat=True)) == ["kept"]
    assert repository.tag_count == 1
    assert repository.size_bytes == kept.size
    assert not Manifest.objects.filter(registry=row, digest=image.digest).exists()


@pytest.mark.django_db
def test_pull_events_change_nothing(client, notified_registry, repo_name):
    row, secret = notified_registry
    body = envelope(event("pull", repo_name, tag="1.0", digest="sha256:" + "a" * 64))
    answer = post_events(client, row, body, secret)
    assert answer.status_code == 200
    assert answer.json() == {"added": 0, "changed": 0, "removed": 0, "new_digests": []}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_X_REGUI_SECRET": "wrong"}],
    ids=["none", "wrong-bearer", "wrong-header"],
)
def test_a_missing_or_wrong_secret_is_401(client, notified_registry, repo_name, headers):
    row, _ = notified_registry
    body = envelope(event("push", repo_name, tag="x", digest="sha256:" + "b" * 64))
    answer = post_events(client, row, body, None, **headers)
    assert answer.status_code == 401
    assert not Repository.objects.filter(registry=row).exists()


@pytest.mark.django_db
def test_the_secret_header_works_too(client, notified_registry, repo_name):
    row, secret = notified_registry
    body = envelope(event("pull", repo_name, tag="x"))
    assert post_events(client, row, body, None, HTTP_X_REGUI_SECRET=secret).status_code == 200


@pytest.mark.django_db
def test_unknown_registry_is_404(client):
    url = reverse("registry-events", args=[987654])
    answer = client.post(url, data=envelope(), content_type=ENVELOPE_TYPE)
    assert answer.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"no": "events"}), json.dumps({"events": [{"action": "push"}]})],
    ids=["not-json", "no-events", "no-target"],
)
def test_malformed_envelopes_are_400(client, notified_registry, body):
    row, secret = notified_registry
    answer = post_events(client, row, body, secret)
    assert answer.status_code == 400
    assert "Malformed notification" in answer.json()["detail"]


@pytest.mark.django_db
def test_only_post_is_accepted(client, notified_registry):
    row, _ = notified_registry
    assert client.get(reverse("registry-events", args=[row.pk])).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_real_registry_notifies_a_push(live_server, registry_factory, repo_name):
    row = Registry.objects.create(name="notifying", url="http://placeholder.invalid")
    secret = row.new_notification_secret()
    row.save()
    endpoint = {
        "name": "regui",
        "url": f"{live_server.url}{reverse('registry-events', args=[row.pk])}",
        "headers": {"Authorization": [f"Bearer {secret}"]},
        "timeout": "5s",
        "threshold": 5,
        "backoff": "1s",
    }
    server = registry_factory(notification_endpoints=[endpoint])
    row.url = server.url
    row.save(update_fields=["url"])
    image = images.build_image()

    images.push_image(server.url, repo_name, "pushed", image)

    deadline = time.monotonic() + SECRET_WAIT_SECONDS
    while time.monotonic() < deadline:
        tag = Tag.objects.filter(repository__registry=row, name="pushed").first()
        if tag is not None:
            break
        time.sleep(0.2)
    assert tag is not None, "the registry's push notification never updated the cache"
    assert tag.manifest.digest == image.digest
    assert tag.manifest.size_bytes == image.size
    row.refresh_from_db()
    assert row.last_synced_at is None  # no sync ran
