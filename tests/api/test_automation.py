"""A CI job's use of the API, end to end, over real HTTP against the real registry and Trivy.

Issue a token, add the registry, sync it, list tags by created date, scan a tag and wait,
read the results, dry-run a cleanup, run it, poll its job, and check the registry itself.
"""

import datetime as dt
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from tests.support import images
from tests.support.scanning_fixtures import fixture_image

TIMEOUT = 30


class Api:
    """What a CI script would write: requests with a bearer token, checked status codes."""

    def __init__(self, base_url, token):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, expected, **kwargs):
        answer = self.session.request(method, self.base_url + path, timeout=TIMEOUT, **kwargs)
        assert answer.status_code == expected, (method, path, answer.status_code, answer.text)
        return answer.json()

    def wait_for_job(self, job_id):
        for _ in range(100):
            job = self.call("GET", f"/api/v1/jobs/{job_id}/", 200)
            if job["status"] in ("succeeded", "failed"):
                return job
        raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_ci_job_scans_and_cleans_up_through_the_api(
    live_server, registry, repo_name, trivy_settings, django_user_model
):
    django_user_model.objects.create_superuser("ci-admin", "ci@example.test", "unused-password")
    out = StringIO()
    call_command("issue_token", "ci-admin", "--expires-days", "1", stdout=out)
    api = Api(live_server.url, out.getvalue().strip())

    # Four builds an hour apart, plus a scannable release image.
    builds = images.push_many_tags(
        registry.url,
        repo_name,
        4,
        tag_format="build-{}",
        created_start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        workers=2,
    )
    images.push_image(registry.url, repo_name, "v1", fixture_image("amd64"))

    created = api.call(
        "POST",
        "/api/v1/registries/",
        201,
        json={
            "name": "ci-registry",
            "url": registry.url,
            "catalog_mode": "list",
            "repository_list": repo_name,
        },
    )
    registry_id = created["id"]
    assert "secret" not in created

    sync = api.call("POST", f"/api/v1/registries/{registry_id}/sync/", 202)
    assert api.wait_for_job(sync["id"])["status"] == "succeeded"

    tags = api.call(
        "GET",
        "/api/v1/tags/",
        200,
        params={"registry": registry_id, "repository": repo_name, "ordering": "-created"},
    )
    build_names = [tag["name"] for tag in tags["results"] if tag["name"].startswith("build-")]
    assert build_names == ["build-3", "build-2", "build-1", "build-0"]
    assert tags["count"] == 5

    scanned = api.call(
        "POST",
        "/api/scan",
        200,
        json={"registry_id": registry_id, "repository": repo_name, "tag": "v1", "wait": True},
    )
    assert scanned["status"] == "success" and scanned["vulnerabilities"]["total"] > 0
    results = api.call(
        "GET",
        "/api/scan-results",
        200,
        params={"registry_id": registry_id, "repository": repo_name, "tag": "v1"},
    )
    assert results["total"] == scanned["vulnerabilities"]["total"]
    assert sum(layer["total"] for layer in results["layers"]) == results["total"]

    rules = {
        "registry": registry_id,
        "repository_pattern": repo_name,
        "tag_pattern": "build-*",
        "keep_newest": 1,
        "protected": [],
    }
    plan = api.call("POST", "/api/v1/cleanup/", 200, json=rules)
    planned = sorted(
        tag for repo in plan["repositories"] for d in repo["deletions"] for tag in d["tags"]
    )
    assert planned == ["build-0", "build-1", "build-2"]
    assert plan["bytes_freed"] > 0

    started = api.call(
        "POST",
        "/api/v1/cleanup/",
        202,
        json={**rules, "dry_run": False, "fingerprint": plan["fingerprint"]},
    )
    job = api.wait_for_job(started["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["deleted"] == 3

    # The registry itself no longer has them.
    remaining = requests.get(f"{registry.url}/v2/{repo_name}/tags/list", timeout=TIMEOUT).json()
    assert sorted(remaining["tags"]) == ["build-3", "v1"]
    for build in builds[:3]:
        manifest = requests.head(
            f"{registry.url}/v2/{repo_name}/manifests/{build.digest}", timeout=TIMEOUT
        )
        assert manifest.status_code == 404
    audit = api.call("GET", "/api/v1/audit/", 200, params={"registry": registry_id})
    actions = {event["action"] for event in audit["results"]}
    assert {"registry.created", "registry.sync", "scan.request", "cleanup.start"} <= actions
