"""The browsing pages: what each role sees, and that they read only the cache."""

import datetime as dt
import html

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from jobs.models import Job
from registries.models import Repository, Tag
from tests.support.cache_rows import image_manifest, index_manifest, repository_with_tags

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_app(registry_a):
    """registry-a's team/app: 1.9, 1.10 and latest (latest shares 1.10's digest)."""
    old = image_manifest(registry_a, "old", created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    new = image_manifest(registry_a, "new", created=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    return repository_with_tags(registry_a, "team/app", {"1.9": old, "1.10": new, "latest": new})


def tag_names(response):
    return [row["tag"].name for row in response.context["rows"]]


def test_dashboard_lists_only_visible_registries(client_for, registry_a, registry_b, team_app):
    page = client_for("carol").get(reverse("dashboard")).content.decode()
    assert "registry-a" in page
    assert "registry-b" not in page


def test_dashboard_sync_button_is_for_operators(client_for, team_app):
    assert "Sync now" not in client_for("carol").get(reverse("dashboard")).content.decode()
    assert "Sync now" in client_for("bob").get(reverse("dashboard")).content.decode()


def test_outsider_gets_404_for_a_registry(client_for, registry_a, team_app):
    client = client_for("mallory")
    assert client.get(reverse("registry", args=[registry_a.pk])).status_code == 404
    url = reverse("repository", args=[registry_a.pk, "team/app"])
    assert client.get(url).status_code == 404


def test_anonymous_is_sent_to_login(client_for, registry_a):
    response = client_for("anonymous").get(reverse("registry", args=[registry_a.pk]))
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_tag_name_sort_is_numeric_aware(client_for, registry_a, team_app):
    url = reverse("repository", args=[registry_a.pk, "team/app"])
    response = client_for("carol").get(url, {"sort": "name"})
    assert tag_names(response) == ["1.9", "1.10", "latest"]
    response = client_for("carol").get(url, {"sort": "-name"})
    assert tag_names(response) == ["latest", "1.10", "1.9"]
    response = client_for("carol").get(url, {"sort": "name", "q": "1."})
    assert tag_names(response) == ["1.9", "1.10"]


def test_tag_sort_by_created_and_siblings(client_for, registry_a, team_app):
    url = reverse("repository", args=[registry_a.pk, "team/app"])
    response = client_for("carol").get(url, {"sort": "created"})
    assert tag_names(response)[0] == "1.9"
    rows = {row["tag"].name: row for row in response.context["rows"]}
    assert rows["1.10"]["siblings"] == ["latest"]
    assert rows["1.9"]["siblings"] == []


def test_htmx_sort_returns_only_the_table(client_for, registry_a, team_app):
    url = reverse("repository", args=[registry_a.pk, "team/app"])
    response = client_for("carol").get(
        url, {"sort": "name"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="tag-table"
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="tag-table"')
    assert "<nav" not in page.split("pagination")[0]


def test_viewer_sees_no_delete_and_a_forged_post_is_403(client_for, registry_a, team_app):
    client = client_for("carol")
    page = client.get(reverse("repository", args=[registry_a.pk, "team/app"])).content.decode()
    assert 'data-action="delete"' not in page
    response = client.post(reverse("tag-delete", args=[registry_a.pk, "team/app", "1.9"]))
    assert response.status_code == 403
    assert Tag.objects.filter(repository=team_app, name="1.9").exists()


def test_delete_confirmation_names_every_sibling(client_for, registry_a, team_app):
    url = reverse("tag-delete", args=[registry_a.pk, "team/app", "latest"])
    page = client_for("bob").get(url).content.decode()
    assert "team/app:latest" in page
    assert "team/app:1.10" in page


def test_cleanup_is_for_registry_admins(client_for, registry_a, team_app):
    url = reverse("cleanup", args=[registry_a.pk])
    assert client_for("bob").get(url).status_code == 403
    assert client_for("alice").get(url).status_code == 200


def test_cleanup_form_rejects_a_bad_regex(client_for, registry_a, team_app):
    response = client_for("alice").post(
        reverse("cleanup", args=[registry_a.pk]),
        {"syntax": "regex", "repository_pattern": "team/(", "tag_pattern": ".*"},
    )
    assert response.status_code == 200
    assert "not a valid regular expression" in response.content.decode()
    assert "plan" not in response.context


def test_cleanup_preview_deletes_nothing(client_for, registry_a, team_app):
    response = client_for("alice").post(
        reverse("cleanup", args=[registry_a.pk]),
        {"syntax": "glob", "repository_pattern": "*", "tag_pattern": "*", "protected": ""},
    )
    assert response.context["plan"].tag_count == 3
    assert Tag.objects.filter(repository=team_app).count() == 3


def test_image_page_of_an_index_switches_platform(client_for, registry_a):
    amd = image_manifest(registry_a, "amd", arch="amd64")
    arm = image_manifest(registry_a, "arm", arch="arm64")
    index = index_manifest(registry_a, "multi", [amd, arm])
    repository_with_tags(registry_a, "multi", {"v1": index})
    url = reverse("image-tag", args=[registry_a.pk, "multi", "v1"])
    client = client_for("carol")
    assert client.get(url).context["shown"] == amd
    response = client.get(url, {"platform": "linux/arm64"})
    assert response.context["shown"] == arm
    raw = client.get(reverse("image-raw", args=[registry_a.pk, "multi", arm.digest, "config"]))
    assert '"architecture": "arm64"' in html.unescape(raw.content.decode())


@pytest.mark.parametrize("sort", ["-created", "name", "-size"])
def test_repository_page_queries_do_not_grow_with_tags(client_for, registry_a, sort):
    def count_queries(tag_count, name):
        manifests = [image_manifest(registry_a, f"{name}-{i}") for i in range(tag_count)]
        repository_with_tags(registry_a, name, {f"t{i}": m for i, m in enumerate(manifests)})
        client = client_for("carol")
        url = reverse("repository", args=[registry_a.pk, name])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, {"per_page": 100, "sort": sort}).status_code == 200
        return len(queries)

    assert count_queries(3, "few") == count_queries(60, "many")


def test_sync_now_is_for_operators_and_audited(client_for, registry_a, team_app):
    url = reverse("registry-sync", args=[registry_a.pk])
    assert client_for("carol").post(url).status_code == 403
    assert client_for("mallory").post(url).status_code == 404
    response = client_for("bob").post(url, {"next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")  # no open redirect
    job = Job.objects.get(kind=Job.Kind.SYNC, registry=registry_a)
    assert job.created_by.username == "bob"
    assert AuditEvent.objects.filter(action="registry.sync", registry=registry_a).exists()


def test_cleanup_run_needs_admin_and_the_previewed_plan(client_for, registry_a, team_app):
    rules = {"syntax": "glob", "repository_pattern": "*", "tag_pattern": "1.*", "protected": ""}
    url = reverse("cleanup-run", args=[registry_a.pk])
    assert client_for("bob").post(url, {**rules, "fingerprint": "x"}).status_code == 403
    response = client_for("alice").post(url, {**rules, "fingerprint": "stale"})
    assert response.status_code == 200
    assert "changed since the preview" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.CLEANUP).exists()
    assert Tag.objects.filter(repository=team_app).count() == 3


def test_jobs_page_shows_only_visible_registries(client_for, registry_a, registry_b):
    Job.objects.create(kind=Job.Kind.SYNC, registry=registry_a, target="registry-a")
    Job.objects.create(kind=Job.Kind.SYNC, registry=registry_b, target="registry-b")
    page = client_for("mallory").get(reverse("jobs")).content.decode()
    assert "registry-b" in page
    assert "registry-a" not in page
    job_a = Job.objects.get(registry=registry_a)
    assert client_for("mallory").get(reverse("job", args=[job_a.pk])).status_code == 404


def test_scanned_images_show_severity_badges(client_for, registry_a, team_app):
    from scanning.models import Scan

    digest = Tag.objects.get(repository=team_app, name="1.10").manifest.digest
    Scan.objects.create(digest=digest, status=Scan.Status.SUCCEEDED, critical=2, high=1, total=3)
    client = client_for("carol")
    page = client.get(reverse("repository", args=[registry_a.pk, "team/app"])).content.decode()
    assert 'title="2 critical"' in page
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.context["cards"][0]["scans"]["scanned"] == 1
    assert dashboard.context["chart"]["title"] == "Vulnerabilities in scanned images"


def test_dashboard_storage_counts_shared_blobs_once(client_for, registry_a):
    shared = ("base", 10_000)
    one = image_manifest(registry_a, "one", layers=[shared, ("one", 100)])
    two = image_manifest(registry_a, "two", layers=[shared, ("two", 200)])
    repository_with_tags(registry_a, "a", {"1": one})
    repository_with_tags(registry_a, "b", {"1": one, "2": two})
    expected = 10_000 + 100 + 200 + one.config_size + two.config_size
    client = client_for("carol")
    assert client.get(reverse("dashboard")).context["cards"][0]["storage"] == expected
    Tag.objects.filter(name="2").delete()  # what a delete or sync leaves: fewer tags
    repository = Repository.objects.get(registry=registry_a, name="b")
    repository.tag_count = 1
    repository.save()
    expected -= 200 + two.config_size
    assert client.get(reverse("dashboard")).context["cards"][0]["storage"] == expected


def test_a_user_without_registries_gets_a_friendly_dashboard(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("newcomer", password="x"))
    page = client.get(reverse("dashboard")).content.decode()
    assert "No registries for you yet" in page


def test_cleanup_warns_when_deletes_are_disabled(client_for, registry_a, team_app):
    registry_a.delete_enabled = False
    registry_a.save()
    page = client_for("alice").get(reverse("cleanup", args=[registry_a.pk])).content.decode()
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in page
