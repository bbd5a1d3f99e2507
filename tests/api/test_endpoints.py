"""What the endpoints answer: contents, bad input, write-only secrets, audit, query counts."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from jobs.models import Job
from registries.models import Manifest, Membership, Registry, Repository, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_client_for):
    return api_client_for


def test_registry_secret_is_write_only_and_never_audited(api, root):
    client = api("root")

    created = client.post(
        "/api/v1/registries/",
        {
            "name": "private",
            "url": "https://registry.example.test/",
            "username": "ci",
            "secret": "s3cr3t-value",
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert "secret" not in body and body["has_secret"] is True
    assert body["url"] == "https://registry.example.test"
    registry = Registry.objects.get(name="private")
    assert registry.secret == "s3cr3t-value"
    changed = client.patch(
        f"/api/v1/registries/{registry.pk}/", {"secret": "rotated-value"}, format="json"
    )
    assert changed.status_code == 200 and "rotated-value" not in changed.content.decode()
    registry.refresh_from_db()
    assert registry.secret == "rotated-value"
    events = AuditEvent.objects.filter(registry=registry).order_by("id")
    assert [event.action for event in events] == ["registry.created", "registry.changed"]
    assert events[1].params == {"secret": "(changed)"}
    assert not any("s3cr3t" in str(e.params) or "rotated" in str(e.params) for e in events)


def test_bad_input_is_a_400_with_field_errors_and_changes_nothing(api, registry_a, alice):
    client = api("alice")

    answer = client.patch(
        f"/api/v1/registries/{registry_a.pk}/",
        {"url": "ftp://nowhere", "sync_interval_minutes": -1},
        format="json",
    )

    assert answer.status_code == 400
    assert set(answer.json()) == {"url", "sync_interval_minutes"}
    registry_a.refresh_from_db()
    assert registry_a.url == "http://registry-a.invalid"
    assert not AuditEvent.objects.filter(action="registry.changed").exists()


def test_list_catalog_mode_needs_repositories(api, root):
    answer = api("root").post(
        "/api/v1/registries/",
        {"name": "ghcr", "url": "https://ghcr.io", "catalog_mode": "list"},
        format="json",
    )
    assert answer.status_code == 400
    assert "repository_list" in answer.json()
    assert not Registry.objects.filter(name="ghcr").exists()


def test_a_malformed_body_is_a_400_detail(api, root):
    answer = api("root").generic(
        "POST", "/api/v1/registries/", "{not json", content_type="application/json"
    )
    assert answer.status_code == 400
    assert "detail" in answer.json()


def test_members_are_added_changed_and_removed_with_audit(api, registry_a, alice, mallory):
    client = api("alice")
    base = f"/api/v1/registries/{registry_a.pk}/members/"

    added = client.post(base, {"username": "mallory", "role": "viewer"}, format="json")
    duplicate = client.post(base, {"username": "mallory", "role": "admin"}, format="json")
    unknown = client.post(base, {"username": "nobody", "role": "viewer"}, format="json")
    changed = client.patch(f"{base}{mallory.pk}/", {"role": "operator"}, format="json")
    listed = client.get(base).json()
    removed = client.delete(f"{base}{mallory.pk}/")

    assert added.status_code == 201 and added.json()["user_id"] == mallory.pk
    assert duplicate.status_code == 400 and "username" in duplicate.json()
    assert unknown.status_code == 400
    assert changed.status_code == 200 and changed.json()["role"] == "operator"
    assert {"username": "mallory", "role": "operator"}.items() <= next(
        m for m in listed["results"] if m["username"] == "mallory"
    ).items()
    assert removed.status_code == 204
    assert not Membership.objects.filter(registry=registry_a, user=mallory).exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="membership.")
        .order_by("id")
        .values_list("action", "target")
    )
    assert actions == [
        ("membership.added", "mallory"),
        ("membership.changed", "mallory"),
        ("membership.removed", "mallory"),
    ]


def test_members_see_only_their_registries(api, registry_a, registry_b, carol, mallory):
    assert [r["name"] for r in api("carol").get("/api/v1/registries/").json()["results"]] == [
        "registry-a"
    ]
    listed = api("mallory").get("/api/v1/registries/").json()["results"]
    assert [(r["name"], r["role"]) for r in listed] == [("registry-b", "viewer")]


def test_me_lists_roles(api, registry_a, bob):
    me = api("bob").get("/api/v1/me/").json()
    assert me["username"] == "bob"
    assert me["registries"] == [
        {"registry": registry_a.pk, "name": "registry-a", "role": "operator"}
    ]
    assert me["token"] is None


def test_tags_carry_siblings_and_scan_summary(api, scanned_image, carol, registry_a):
    answer = api("carol").get(
        "/api/v1/tags/", {"registry": registry_a.pk, "repository": "app", "ordering": "name"}
    )

    assert answer.status_code == 200
    tags = answer.json()["results"]
    assert [(t["name"], t["sibling_tags"]) for t in tags] == [
        ("1.0", ["latest"]),
        ("latest", ["1.0"]),
    ]
    assert tags[0]["vulnerabilities"]["high"] == 1
    assert tags[0]["size"] == 3000 and tags[0]["platforms"] == ["linux/amd64"]


def test_tag_list_needs_registry_and_repository(api, carol):
    answer = api("carol").get("/api/v1/tags/")
    assert answer.status_code == 400
    assert set(answer.json()) == {"registry", "repository"}


def test_tag_list_queries_do_not_grow_with_the_page(api, registry_a, carol):
    repository = Repository.objects.create(registry=registry_a, name="many")
    now = timezone.now()

    def add_tags(start, count):
        for number in range(start, start + count):
            manifest = Manifest.objects.create(
                registry=registry_a,
                digest=f"sha256:{number:064x}",
                media_type="application/vnd.oci.image.manifest.v1+json",
                created=now - dt.timedelta(hours=number),
            )
            Tag.objects.create(repository=repository, name=f"v{number}", manifest=manifest)
            Tag.objects.create(repository=repository, name=f"v{number}-alias", manifest=manifest)

    def queries():
        client = api("carol")
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(
                "/api/v1/tags/", {"registry": registry_a.pk, "repository": "many", "page_size": 200}
            )
        assert answer.status_code == 200
        return len(captured), answer.json()["count"]

    add_tags(0, 2)
    few, count = queries()
    add_tags(2, 40)
    many, more = queries()

    assert (count, more) == (4, 84)
    assert many == few


def test_image_details_list_layers_config_and_tags(api, scanned_image, registry_a, carol):
    answer = api("carol").get(
        f"/api/v1/images/{scanned_image.digest}/", {"registry": registry_a.pk}
    )

    assert answer.status_code == 200
    image = answer.json()
    assert image["layers"][0]["size"] == 2000
    assert image["config"] == {"architecture": "amd64", "os": "linux"}
    assert image["tags"] == [
        {"repository": "app", "name": "1.0"},
        {"repository": "app", "name": "latest"},
    ]
    assert image["vulnerabilities"]["total"] == 1


def test_deleting_a_tag_lists_every_tag_removed(api, live_registry_a, scanned_image, bob):
    tag = scanned_image.tags.get(name="1.0")

    answer = api("bob").delete(f"/api/v1/tags/{tag.pk}/")

    assert answer.status_code == 200
    body = answer.json()
    assert body["removed_tags"] == [
        {"repository": "app", "tag": "1.0"},
        {"repository": "app", "tag": "latest"},
    ]
    assert body["already_gone"] is True  # the registry never had this cached-only image
    assert not Tag.objects.filter(repository__name="app").exists()
    assert AuditEvent.objects.get(action="tag.delete").actor_name == "bob"


def test_findings_filter_and_vulnerability_search(api, scanned_image, registry_a, carol, mallory):
    client = api("carol")
    findings = f"/api/v1/scans/{scanned_image.digest}/findings/"

    high = client.get(findings, {"registry": registry_a.pk, "severity": "HIGH"}).json()
    low = client.get(findings, {"registry": registry_a.pk, "severity": "LOW"}).json()
    fixable = client.get(findings, {"registry": registry_a.pk, "fixable": "true"}).json()
    hits = client.get("/api/v1/vulnerabilities/", {"id": "cve-2024-0001"}).json()
    by_package = client.get("/api/v1/vulnerabilities/", {"package": "openssl"}).json()
    hidden = api("mallory").get("/api/v1/vulnerabilities/", {"id": "CVE-2024-0001"}).json()

    assert [f["vulnerability_id"] for f in high["results"]] == ["CVE-2024-0001"]
    assert low["count"] == 0 and fixable["count"] == 1
    assert {(h["repository"], h["tag"]) for h in hits["results"]} == {
        ("app", "1.0"),
        ("app", "latest"),
    }
    assert by_package["count"] == 2
    assert hidden["count"] == 0
    assert client.get("/api/v1/vulnerabilities/").status_code == 400


def test_scans_list_shows_summaries_and_tags(api, scanned_image, registry_a, carol):
    answer = api("carol").get("/api/v1/scans/", {"registry": registry_a.pk, "tag": "latest"}).json()

    assert answer["count"] == 1
    scan = answer["results"][0]
    assert scan["digest"] == scanned_image.digest
    assert scan["summary"]["high"] == 1
    assert scan["tags"] == [{"registry": registry_a.pk, "repository": "app", "tag": "latest"}]


def test_audit_for_registry_admins_is_limited_to_their_registries(
    api, registry_a, registry_b, alice, root
):
    AuditEvent.objects.create(action="x.a", registry=registry_a)
    AuditEvent.objects.create(action="x.b", registry=registry_b)
    AuditEvent.objects.create(action="x.none")

    mine = {e["action"] for e in api("alice").get("/api/v1/audit/").json()["results"]}
    everything = {e["action"] for e in api("root").get("/api/v1/audit/").json()["results"]}

    assert mine == {"x.a"}
    assert {"x.a", "x.b", "x.none"} <= everything


def test_sync_through_the_api_is_audited_and_answers_the_job(api, registry_a, bob):
    answer = api("bob").post(f"/api/v1/registries/{registry_a.pk}/sync/")

    assert answer.status_code == 202
    assert answer.json()["kind"] == "sync" and answer.json()["status"] == "queued"
    event = AuditEvent.objects.get(action="registry.sync")
    assert event.actor_name == "bob" and event.params == {"job": answer.json()["id"]}


def test_role_is_checked_on_an_operator_deleting_a_registry(api, registry_a, bob):
    assert api("bob").delete(f"/api/v1/registries/{registry_a.pk}/").status_code == 403
    assert Registry.objects.filter(pk=registry_a.pk).exists()


def test_admin_deletes_a_registry_with_cached_tags(api, scanned_image, registry_a, alice):
    assert api("alice").delete(f"/api/v1/registries/{registry_a.pk}/").status_code == 204
    assert not Registry.objects.filter(pk=registry_a.pk).exists()
    assert AuditEvent.objects.get(action="registry.deleted").registry_name == "registry-a"


def test_unknown_api_paths_answer_json_404(api, carol):
    answer = api("carol").get("/api/v1/nothing-here/")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "No such API endpoint."}
    no_slash = api("carol").get("/api/v1/me")
    assert no_slash.status_code == 404
    assert "Did you mean /api/v1/me/" in no_slash.json()["detail"]


def test_an_unknown_role_is_refused(api, registry_a, alice, mallory):
    bad = api("alice").post(
        f"/api/v1/registries/{registry_a.pk}/members/",
        {"username": "mallory", "role": "owner"},
        format="json",
    )
    assert bad.status_code == 400 and "role" in bad.json()
    assert not Membership.objects.filter(registry=registry_a, user=mallory).exists()


def test_a_browser_session_needs_the_csrf_token_for_changes(registry_a, bob):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(bob)

    assert client.get(f"/api/v1/registries/{registry_a.pk}/").status_code == 200
    refused = client.post(f"/api/v1/registries/{registry_a.pk}/sync/")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_jobs_are_filtered_and_limited_to_visible_registries(
    api, registry_a, registry_b, carol, mallory
):
    sync_a = Job.objects.create(kind=Job.Kind.SYNC, registry=registry_a)
    Job.objects.create(kind=Job.Kind.SCAN, registry=registry_a, digest="sha256:" + "b" * 64)
    Job.objects.create(kind=Job.Kind.SYNC, registry=registry_b)

    syncs = api("carol").get("/api/v1/jobs/", {"kind": "sync"}).json()
    everything = api("carol").get("/api/v1/jobs/").json()

    assert [job["id"] for job in syncs["results"]] == [sync_a.pk]
    assert everything["count"] == 2
    assert api("mallory").get(f"/api/v1/jobs/{sync_a.pk}/").status_code == 404
