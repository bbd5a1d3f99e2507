"""Deleting a tag deletes its digest, with every sibling tag, in the real registry."""

import datetime as dt

import pytest
import requests
from django.urls import reverse

from audit.models import AuditEvent
from registries.deletion import DeletionError, delete_tag, tags_sharing_digest
from registries.models import Tag
from tests.support.cache_rows import sync_into
from tests.support.images import build_image, delete_manifest, push_image

pytestmark = pytest.mark.django_db


def push_three(server, repository):
    """`a` and `a-alias` share a digest; `b` has its own."""
    shared = build_image(created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), extra_files={"v": "a"})
    other = build_image(created=dt.datetime(2024, 2, 1, tzinfo=dt.UTC), extra_files={"v": "b"})
    push_image(server.url, repository, "a", shared)
    push_image(server.url, repository, "a-alias", shared)
    push_image(server.url, repository, "b", other)
    return shared


def cached_tags(registry_row):
    return set(Tag.objects.filter(repository__registry=registry_row).values_list("name", flat=True))


def listed_tags(server, repository):
    answer = requests.get(f"{server.url}/v2/{repository}/tags/list", timeout=10)
    return set(answer.json().get("tags") or [])


def test_delete_takes_the_siblings_along(registry, repo_name, registry_a, bob):
    push_three(registry, repo_name)
    row = sync_into(registry_a, registry, [repo_name])
    tag = Tag.objects.get(repository__registry=row, name="a")
    assert tags_sharing_digest(tag) == ["a", "a-alias"]

    outcome = delete_tag(tag, user=bob)

    assert outcome.tags == ["a", "a-alias"]
    assert listed_tags(registry, repo_name) == {"b"}
    assert cached_tags(row) == {"b"}
    assert tag.repository.__class__.objects.get(pk=tag.repository_id).tag_count == 1
    event = AuditEvent.objects.get(action="tag.delete")
    assert event.actor == bob
    assert event.params["tags"] == ["a", "a-alias"]
    assert event.result == AuditEvent.Result.OK


def test_delete_disabled_says_how_to_enable_it(registry_factory, registry_a, client_for):
    server = registry_factory(delete_enabled=False)
    push_three(server, "app")
    row = sync_into(registry_a, server, ["app"])
    url = reverse("tag-delete", args=[row.pk, "app", "a"])

    response = client_for("bob").post(url, follow=True)

    page = response.content.decode()
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in page
    assert listed_tags(server, "app") == {"a", "a-alias", "b"}
    assert cached_tags(row) == {"a", "a-alias", "b"}
    row.refresh_from_db()
    assert row.delete_enabled is False
    assert AuditEvent.objects.get(action="tag.delete").result == AuditEvent.Result.FAILED
    # The confirmation dialog warns before the next attempt.
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in client_for("bob").get(url).content.decode()


def test_a_digest_already_gone_is_removed_from_the_cache(registry, repo_name, registry_a, bob):
    shared = push_three(registry, repo_name)
    row = sync_into(registry_a, registry, [repo_name])
    delete_manifest(registry.url, repo_name, shared.digest)  # someone else was quicker

    outcome = delete_tag(Tag.objects.get(repository__registry=row, name="a-alias"), user=bob)

    assert outcome.already_gone
    assert cached_tags(row) == {"b"}


def test_an_unreachable_registry_changes_nothing(registry_factory, registry_a, bob):
    server = registry_factory()
    push_three(server, "app")
    row = sync_into(registry_a, server, ["app"])
    server.stop()

    with pytest.raises(DeletionError, match="The delete failed at registry-a"):
        delete_tag(Tag.objects.get(repository__registry=row, name="b"), user=bob)
    assert cached_tags(row) == {"a", "a-alias", "b"}
