"""The scanning pages, rendered by Django with real scans of the fixture images."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from jobs.models import Job
from scanning import services
from tests.support.scanning_fixtures import (
    apk_layer_digest,
    fixture_image,
    fixture_index,
    push_and_cache,
)
from tests.support.trivy_db import DEFAULT_UPDATED_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def scanned(
    trivy_settings, registry, live_registry_a, repo_name, django_capture_on_commit_callbacks
):
    image = fixture_image("amd64")
    manifest = push_and_cache(registry, live_registry_a, repo_name, "v1", image)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_scan(live_registry_a, manifest, repository=repo_name)
    return image


def scan_url(registry, repository, digest, suffix=""):
    return reverse("image-scan" + suffix, args=[registry.pk, repository, digest])


def listed(response):
    return response.content.decode().count("data-finding=")


def test_findings_page_lists_every_finding_with_its_advisory_link(
    client_for, live_registry_a, repo_name, scanned
):
    response = client_for("carol").get(scan_url(live_registry_a, repo_name, scanned.digest))

    assert response.status_code == 200
    page = response.content.decode()
    assert listed(response) == 6
    assert 'href="https://avd.aquasec.com/nvd/cve-2099-0001"' in page
    assert "Trivy 0.59.1" in page and "2025-01-15" in page
    assert 'id="scan-button"' not in page  # viewers do not scan
    assert 'id="stale-badge"' not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"severity": ["CRITICAL"]}, 2),
        ({"severity": ["HIGH", "MEDIUM"]}, 2),
        ({"fixable": "1"}, 5),
        ({"package": "busybox"}, 2),
        ({"q": "cve-2099-0003"}, 1),
        ({"q": "fixture overflow"}, 1),
    ],
)
def test_findings_filters(client_for, live_registry_a, repo_name, scanned, query, expected):
    url = scan_url(live_registry_a, repo_name, scanned.digest)
    assert listed(client_for("carol").get(url, query)) == expected


def test_group_by_layer_shows_the_real_layer(client_for, live_registry_a, repo_name, scanned):
    url = scan_url(live_registry_a, repo_name, scanned.digest)
    page = client_for("carol").get(url, {"group": "layer"}).content.decode()
    assert f'data-layer="{apk_layer_digest(scanned)}"' in page
    assert "Layer 2" in page
    assert f'data-layer="{scanned.layers[0].digest}"' not in page  # no findings there


def test_json_report_download(client_for, live_registry_a, repo_name, scanned):
    url = scan_url(live_registry_a, repo_name, scanned.digest, "-report")
    response = client_for("carol").get(url)
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["SchemaVersion"] == 2


def test_stale_badge_when_the_db_is_newer(client_for, live_registry_a, repo_name, scanned):
    services.note_scanner_state("0.59.1", DEFAULT_UPDATED_AT + timedelta(days=1))
    url = scan_url(live_registry_a, repo_name, scanned.digest)
    assert 'id="stale-badge"' in client_for("carol").get(url).content.decode()


def test_operator_starts_a_scan_and_polls_its_progress(
    client_for, live_registry_a, repo_name, scanned
):
    client = client_for("bob")
    page = client.get(scan_url(live_registry_a, repo_name, scanned.digest)).content.decode()
    assert 'id="scan-button"' in page

    response = client.post(
        scan_url(live_registry_a, repo_name, scanned.digest, "-start"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    job = Job.objects.filter(kind="scan").first()
    assert job.status == "queued"
    assert f'hx-get="{reverse("scan-progress", args=[job.pk])}"' in response.content.decode()

    job.start()
    job.report_progress(0, 1)
    polled = client.get(reverse("scan-progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert "Running" in polled.content.decode() and "HX-Refresh" not in polled
    job.succeed({})
    finished = client.get(reverse("scan-progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true"


def test_viewer_cannot_start_a_scan(client_for, live_registry_a, repo_name, scanned):
    url = scan_url(live_registry_a, repo_name, scanned.digest, "-start")
    assert client_for("carol").post(url).status_code == 403
    assert client_for("mallory").post(url).status_code == 404


def test_index_page_lists_platforms_not_attestations(
    trivy_settings,
    client_for,
    registry,
    live_registry_a,
    repo_name,
    django_capture_on_commit_callbacks,
):
    index = fixture_index()
    manifest = push_and_cache(registry, live_registry_a, repo_name, "multi", index)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_scan(live_registry_a, manifest, repository=repo_name)

    page = client_for("carol").get(scan_url(live_registry_a, repo_name, index.digest))

    text = page.content.decode()
    assert "linux/amd64" in text and "linux/arm64" in text
    assert "unknown/unknown" not in text
    for child in index.children:
        assert scan_url(live_registry_a, repo_name, child.digest) in text


@pytest.fixture
def index_in_a_and_arm64_in_b(
    trivy_settings,
    registry,
    fresh_registry,
    live_registry_a,
    registry_b,
    repo_name,
    django_capture_on_commit_callbacks,
):
    """The index in A (scanned) and its arm64 child tagged in B: one scan serves both."""
    registry_b.url = fresh_registry.url
    registry_b.save()
    index = fixture_index()
    push_and_cache(fresh_registry, registry_b, "elsewhere/app", "1.0", index.children[1])
    manifest = push_and_cache(registry, live_registry_a, repo_name, "multi", index)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_scan(live_registry_a, manifest, repository=repo_name)
    return index


def test_search_finds_images_in_the_registries_the_user_sees(
    personas, live_registry_a, registry_b, index_in_a_and_arm64_in_b
):
    def hits(name, **query):
        return [(h.registry.pk, h.tag) for h in services.search(personas[name], **query)]

    curl_bug = {"vulnerability_id": "CVE-2099-0006"}
    assert hits("carol", **curl_bug) == [(live_registry_a.pk, "multi")]
    assert hits("mallory", **curl_bug) == [(registry_b.pk, "1.0")]
    assert sorted(hits("root", **curl_bug)) == sorted(
        [(live_registry_a.pk, "multi"), (registry_b.pk, "1.0")]
    )
    assert hits("anonymous", **curl_bug) == []
    assert hits("carol", package="zlib", below_version="1.2.13-r1") == [
        (live_registry_a.pk, "multi")
    ]
    assert hits("carol", package="zlib", below_version="1.2.13-r0") == []
    assert hits("carol", package="curl", below_version="8.10") == [(live_registry_a.pk, "multi")]


def test_search_page(client_for, live_registry_a, index_in_a_and_arm64_in_b):
    response = client_for("carol").get(reverse("scan-search"), {"cve": "CVE-2099-0006"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 tag found" in page and "multi" in page and "registry-b" not in page


def test_diff_between_the_two_platforms(
    client_for, live_registry_a, repo_name, index_in_a_and_arm64_in_b
):
    amd64, arm64 = index_in_a_and_arm64_in_b.children
    query = {
        "a_registry": live_registry_a.pk,
        "a_repository": repo_name,
        "a_reference": amd64.digest,
        "b_registry": live_registry_a.pk,
        "b_repository": repo_name,
        "b_reference": arm64.digest,
    }
    response = client_for("carol").get(reverse("scan-diff"), query)

    changes = response.context["changes"]
    keys = {
        name: sorted((f.vulnerability_id, f.package) for f in changes[name]) for name in changes
    }
    assert keys == {
        "added": [("CVE-2099-0006", "curl")],
        "fixed": [
            ("CVE-2099-0001", "libcrypto3"),
            ("CVE-2099-0001", "libssl3"),
            ("CVE-2099-0003", "musl"),
            ("CVE-2099-0004", "busybox"),
        ],
        "unchanged": [("CVE-2099-0002", "zlib"), ("CVE-2099-0005", "busybox")],
    }
    assert 'id="added-count">1<' in response.content.decode()


def test_diff_of_a_registry_the_user_cannot_see_is_404(
    client_for, live_registry_a, registry_b, repo_name, index_in_a_and_arm64_in_b
):
    query = {
        "a_registry": registry_b.pk,
        "a_repository": "elsewhere/app",
        "a_reference": "1.0",
        "b_registry": live_registry_a.pk,
        "b_repository": repo_name,
        "b_reference": "multi",
    }
    assert client_for("carol").get(reverse("scan-diff"), query).status_code == 404
