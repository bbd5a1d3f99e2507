"""The original Docker Registry UI's scan API: same requests, same answer fields, our roles."""

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from jobs.models import Job
from tests.support import images
from tests.support.scanning_fixtures import fixture_image, fixture_index, push_and_cache

SUMMARY_FIELDS = {"total", "critical", "high", "medium", "low", "unknown", "fixable"}
RESULT_FIELDS = SUMMARY_FIELDS | {"scanned_at", "db_updated_at", "layers"}
LAYER_FIELDS = SUMMARY_FIELDS | {"digest", "size"}


@pytest.fixture
def api_for(client_for):
    return lambda name: client_for(name, client_class=APIClient)


@pytest.fixture
def pushed(registry, live_registry_a, repo_name):
    image = fixture_image("amd64")
    push_and_cache(registry, live_registry_a, repo_name, "v1", image)
    return image


def scan_body(registry, repository, tag="v1", **extra):
    return {"registry_id": registry.pk, "repository": repository, "tag": tag, **extra}


def results_query(registry, repository, tag="v1"):
    return {"registry_id": registry.pk, "repository": repository, "tag": tag}


@pytest.mark.django_db(transaction=True)
def test_operator_scans_and_waits_for_the_summary(
    trivy_settings, api_for, live_registry_a, repo_name, pushed
):
    response = api_for("bob").post(
        "/api/scan", scan_body(live_registry_a, repo_name, wait=True), format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "success",
        "vulnerabilities": {
            "total": 6,
            "critical": 2,
            "high": 1,
            "medium": 1,
            "low": 1,
            "unknown": 1,
            "fixable": 5,
        },
    }
    event = AuditEvent.objects.get(action="scan.request")
    assert event.actor_name == "bob" and event.registry_id == live_registry_a.pk


@pytest.mark.django_db
def test_scan_without_wait_answers_202_with_the_job(api_for, live_registry_a, repo_name, pushed):
    response = api_for("bob").post(
        "/api/scan", scan_body(live_registry_a, repo_name), format="json"
    )

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.digest, job.status) == ("scan", pushed.digest, "queued")
    assert response.json()["target"] == f"{repo_name}@{pushed.digest}"


@pytest.mark.django_db(transaction=True)
def test_viewer_reads_results_with_exactly_the_original_fields(
    trivy_settings, api_for, live_registry_a, repo_name, pushed
):
    api_for("bob").post("/api/scan", scan_body(live_registry_a, repo_name, wait=True))

    response = api_for("carol").get("/api/scan-results", results_query(live_registry_a, repo_name))

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == RESULT_FIELDS
    assert (answer["total"], answer["critical"], answer["high"], answer["fixable"]) == (6, 2, 1, 5)
    assert answer["db_updated_at"].startswith("2025-01-15T06:00:00")
    assert [layer["digest"] for layer in answer["layers"]] == [
        blob.digest for blob in pushed.layers
    ]
    assert [layer["size"] for layer in answer["layers"]] == [blob.size for blob in pushed.layers]
    assert all(set(layer) == LAYER_FIELDS for layer in answer["layers"])
    assert [layer["total"] for layer in answer["layers"]] == [0, 6]


@pytest.mark.django_db(transaction=True)
def test_results_of_an_index_tag_count_every_platform(
    trivy_settings, api_for, registry, live_registry_a, repo_name
):
    index = fixture_index()
    push_and_cache(registry, live_registry_a, repo_name, "multi", index)

    scanned = api_for("bob").post(
        "/api/scan", scan_body(live_registry_a, repo_name, "multi", wait=True), format="json"
    )
    answer = (
        api_for("carol")
        .get("/api/scan-results", results_query(live_registry_a, repo_name, "multi"))
        .json()
    )

    assert scanned.json()["vulnerabilities"]["total"] == 9
    assert answer["total"] == 9
    amd64 = index.children[0]
    assert [layer["digest"] for layer in answer["layers"]] == [blob.digest for blob in amd64.layers]


@pytest.mark.django_db
def test_unscanned_image_results_are_404(api_for, live_registry_a, repo_name, pushed):
    response = api_for("carol").get("/api/scan-results", results_query(live_registry_a, repo_name))
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("carol", 403), ("dave", 403), ("mallory", 404), ("anonymous", 401)],
)
def test_scan_needs_the_operator_role(
    api_for, live_registry_a, repo_name, pushed, persona, expected
):
    response = api_for(persona).post(
        "/api/scan", scan_body(live_registry_a, repo_name), format="json"
    )
    assert response.status_code == expected
    assert not Job.objects.filter(kind="scan").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "expected"), [("mallory", 404), ("anonymous", 401)])
def test_results_need_a_role_in_the_registry(
    api_for, live_registry_a, repo_name, pushed, persona, expected
):
    response = api_for(persona).get("/api/scan-results", results_query(live_registry_a, repo_name))
    assert response.status_code == expected


@pytest.mark.django_db
def test_bad_requests_are_400_and_unknown_tags_404(api_for, live_registry_a, repo_name, pushed):
    client = api_for("bob")
    assert client.post("/api/scan", {"repository": repo_name}, format="json").status_code == 400
    missing = client.post(
        "/api/scan", scan_body(live_registry_a, repo_name, tag="nope"), format="json"
    )
    assert missing.status_code == 404
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_wait_on_a_failing_scan_answers_the_reason(
    trivy_settings, api_for, registry, live_registry_a, repo_name, pushed
):
    images.delete_manifest(registry.url, repo_name, pushed.digest)

    response = api_for("bob").post(
        "/api/scan", scan_body(live_registry_a, repo_name, wait=True), format="json"
    )

    assert response.status_code == 502
    assert response.json()["status"] == "error"
    assert "manifest unknown" in response.json()["error"]
