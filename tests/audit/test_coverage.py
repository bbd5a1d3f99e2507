"""Every change through the UI and the API leaves an audit row: what, who, where, with what.

Each test performs one action through its real view against a real registry and reads the row.
"""

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from jobs.models import Job
from registries import cleanup
from registries.models import Membership, Tag
from registries.ui_forms import CleanupForm
from tests.support.cache_rows import sync_into
from tests.support.images import build_image, push_image

pytestmark = pytest.mark.django_db

CLEANUP_RULES = {"syntax": "glob", "repository_pattern": "*", "tag_pattern": "old-*"}


@pytest.fixture
def pushed(registry, repo_name, registry_a):
    """Two images in a fresh repository of the live registry, synced into registry A:
    `old-1` and `keep` share nothing."""
    old = build_image(created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), extra_files={"v": "old"})
    kept = build_image(created=dt.datetime(2024, 2, 1, tzinfo=dt.UTC), extra_files={"v": "keep"})
    push_image(registry.url, repo_name, "old-1", old)
    push_image(registry.url, repo_name, "keep", kept)
    sync_into(registry_a, registry, [repo_name])
    return {"old": old, "kept": kept}


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def the_event(action):
    [event] = AuditEvent.objects.filter(action=action)
    return event


def assert_event(action, *, actor, registry=None, **params):
    event = the_event(action)
    assert event.actor == actor and event.actor_name == actor.username
    assert event.registry == registry
    assert event.result == AuditEvent.Result.OK
    for key, value in params.items():
        assert event.params[key] == value, (key, event.params)
    return event


def tag(registry, repository, name):
    return Tag.objects.select_related("manifest").get(
        repository__registry=registry, repository__name=repository, name=name
    )


# Deletes


def test_ui_tag_delete(client_for, bob, registry_a, repo_name, pushed):
    digest = tag(registry_a, repo_name, "old-1").manifest.digest

    client_for("bob").post(reverse("tag-delete", args=[registry_a.pk, repo_name, "old-1"]))

    event = assert_event(
        "tag.delete", actor=bob, registry=registry_a, repository=repo_name, digest=digest
    )
    assert event.params["tags"] == ["old-1"] and event.target == f"{repo_name}:old-1"


def test_api_tag_delete(bob, registry_a, repo_name, pushed):
    row = tag(registry_a, repo_name, "old-1")

    assert api_for(bob).delete(f"/api/v1/tags/{row.pk}/").status_code == 200

    assert_event("tag.delete", actor=bob, registry=registry_a, tags=["old-1"])


def test_api_image_delete(bob, registry_a, repo_name, pushed):
    digest = pushed["old"].digest
    query = f"?registry={registry_a.pk}&repository={repo_name}"

    assert api_for(bob).delete(f"/api/v1/images/{digest}/{query}").status_code == 200

    assert_event("image.delete", actor=bob, registry=registry_a, digest=digest, tags=["old-1"])


# Cleanups: the rules are in the start and the finish rows


def test_ui_cleanup(client_for, alice, registry_a, pushed):
    form = CleanupForm({**CLEANUP_RULES, "protected": ""}, registry=registry_a)
    assert form.is_valid(), form.errors
    plan = cleanup.build_plan(registry_a, form.rules())

    client_for("alice").post(
        reverse("cleanup-run", args=[registry_a.pk]),
        {**CLEANUP_RULES, "protected": "", "fingerprint": plan.fingerprint},
    )

    event = assert_event("cleanup.start", actor=alice, registry=registry_a, tags=1)
    assert event.params["rules"] == form.rules().as_params()
    assert event.params["rules"]["tag_pattern"] == "old-*"


def test_api_cleanup_start_and_finish(
    alice, registry_a, repo_name, pushed, django_capture_on_commit_callbacks
):
    body = {"registry": registry_a.pk, "repository_pattern": repo_name, "tag_pattern": "old-*"}
    plan = api_for(alice).post("/api/v1/cleanup/", body, format="json").json()

    with django_capture_on_commit_callbacks(execute=True):
        started = api_for(alice).post(
            "/api/v1/cleanup/",
            {**body, "dry_run": False, "fingerprint": plan["fingerprint"]},
            format="json",
        )

    assert started.status_code == 202
    start = assert_event(
        "cleanup.start", actor=alice, registry=registry_a, job=started.json()["id"]
    )
    finish = assert_event("cleanup.finish", actor=alice, registry=registry_a)
    assert start.params["rules"]["tag_pattern"] == finish.params["rules"]["tag_pattern"] == "old-*"
    assert finish.params["deleted"] == 1


# Scan and sync requests


def test_ui_scan_request(client_for, bob, registry_a, repo_name, pushed):
    digest = pushed["kept"].digest

    client_for("bob").post(
        reverse("image-scan-start", args=[registry_a.pk, repo_name, digest]),
        HTTP_HX_REQUEST="true",
    )

    event = assert_event("scan.request", actor=bob, registry=registry_a, joined=False)
    assert event.target == f"{repo_name}@{digest}" and event.params["job"]


def test_api_scan_request(bob, registry_a, repo_name, pushed):
    body = {"registry_id": registry_a.pk, "repository": repo_name, "tag": "keep"}

    assert api_for(bob).post("/api/scan", body, format="json").status_code in (200, 202)

    event = assert_event("scan.request", actor=bob, registry=registry_a)
    assert event.target == f"{repo_name}@{pushed['kept'].digest}"


def test_ui_sync_request(client_for, bob, registry_a):
    client_for("bob").post(reverse("registry-sync", args=[registry_a.pk]))

    job = Job.objects.get(kind=Job.Kind.SYNC, registry=registry_a)
    assert_event("registry.sync", actor=bob, registry=registry_a, job=job.pk)


def test_api_sync_request(bob, registry_a):
    answer = api_for(bob).post(f"/api/v1/registries/{registry_a.pk}/sync/")

    assert_event("registry.sync", actor=bob, registry=registry_a, job=answer.json()["id"])


# Tokens


def test_token_issue_and_revoke(client_for, carol):
    client = client_for("carol")
    client.post("/accounts/tokens/", {"name": "ci", "expires_days": "30"})
    token = ApiToken.objects.get(user=carol)
    issued = assert_event("token.issue", actor=carol, read_only=False, expires_days=30)
    assert issued.target.startswith("carol: ")

    client.post(f"/accounts/tokens/{token.pk}/revoke/")

    assert the_event("token.revoke").actor == carol
    assert not ApiToken.objects.filter(pk=token.pk).exists()


# Memberships and the registry itself


def test_membership_changes(alice, mallory, registry_a):
    members = f"/api/v1/registries/{registry_a.pk}/members/"
    api = api_for(alice)
    api.post(members, {"username": "mallory", "role": "viewer"}, format="json")
    api.patch(f"{members}{mallory.pk}/", {"role": "operator"}, format="json")
    api.delete(f"{members}{mallory.pk}/")

    assert_event("membership.added", actor=alice, registry=registry_a, role="viewer")
    assert_event("membership.changed", actor=alice, registry=registry_a, role="operator")
    assert_event("membership.removed", actor=alice, registry=registry_a, role="operator")
    assert not Membership.objects.filter(user=mallory, registry=registry_a).exists()


def test_registry_change_and_delete(alice, root, registry_a):
    api_for(alice).patch(
        f"/api/v1/registries/{registry_a.pk}/", {"sync_interval_minutes": 90}, format="json"
    )
    changed = assert_event("registry.changed", actor=alice, registry=registry_a)
    assert "sync_interval_minutes" in str(changed.params)

    api_for(root).delete(f"/api/v1/registries/{registry_a.pk}/")

    deleted = the_event("registry.deleted")
    assert deleted.actor == root and deleted.registry_name == "registry-a"
