"""Every endpoint × every persona, checked against one table of expected status codes.

Personas: anonymous, mallory (outsider: viewer of B only), carol (viewer of A), bob (operator
of A), alice (admin of A), root (superuser), and two API tokens of alice: a read-only one and
an expired one. Every request below targets registry A.
"""

import json

import pytest

from jobs.models import Job

PERSONAS = [
    "anonymous",
    "mallory",
    "carol",
    "bob",
    "alice",
    "root",
    "readonly_token",
    "expired_token",
]

# (method, path template, body): {persona column: status}, in the order of PERSONAS.
# Placeholders: {a} registry A's id (a live registry), {carol} carol's user id, {job} a job of
# A, {digest} the cached and scanned image of A (tags 1.0 and latest), {tag} the id of tag 1.0.
TABLE = [
    ("GET", "/api/v1/registries/", None, [401, 200, 200, 200, 200, 200, 200, 401]),
    (
        "POST",
        "/api/v1/registries/",
        {"name": "new", "url": "http://new.invalid"},
        [401, 403, 403, 403, 403, 201, 403, 401],
    ),
    ("GET", "/api/v1/registries/{a}/", None, [401, 404, 200, 200, 200, 200, 200, 401]),
    (
        "PATCH",
        "/api/v1/registries/{a}/",
        {"sync_interval_minutes": 30},
        [401, 404, 403, 403, 200, 200, 403, 401],
    ),
    ("DELETE", "/api/v1/registries/{a}/", None, [401, 404, 403, 403, 204, 204, 403, 401]),
    ("POST", "/api/v1/registries/{a}/test/", None, [401, 404, 403, 403, 200, 200, 403, 401]),
    ("POST", "/api/v1/registries/{a}/sync/", None, [401, 404, 403, 202, 202, 202, 403, 401]),
    ("GET", "/api/v1/registries/{a}/members/", None, [401, 404, 403, 403, 200, 200, 200, 401]),
    (
        "POST",
        "/api/v1/registries/{a}/members/",
        {"username": "mallory", "role": "viewer"},
        [401, 404, 403, 403, 201, 201, 403, 401],
    ),
    (
        "PATCH",
        "/api/v1/registries/{a}/members/{carol}/",
        {"role": "operator"},
        [401, 404, 403, 403, 200, 200, 403, 401],
    ),
    (
        "DELETE",
        "/api/v1/registries/{a}/members/{carol}/",
        None,
        [401, 404, 403, 403, 204, 204, 403, 401],
    ),
    ("GET", "/api/v1/jobs/", None, [401, 200, 200, 200, 200, 200, 200, 401]),
    ("GET", "/api/v1/jobs/{job}/", None, [401, 404, 200, 200, 200, 200, 200, 401]),
    ("GET", "/api/v1/repositories/", None, [401, 200, 200, 200, 200, 200, 200, 401]),
    (
        "GET",
        "/api/v1/tags/?registry={a}&repository=app&ordering=-created",
        None,
        [401, 404, 200, 200, 200, 200, 200, 401],
    ),
    (
        "GET",
        "/api/v1/images/{digest}/?registry={a}",
        None,
        [401, 404, 200, 200, 200, 200, 200, 401],
    ),
    ("GET", "/api/v1/tags/{tag}/", None, [401, 404, 200, 200, 200, 200, 200, 401]),
    ("DELETE", "/api/v1/tags/{tag}/", None, [401, 404, 403, 200, 200, 200, 403, 401]),
    (
        "DELETE",
        "/api/v1/images/{digest}/?registry={a}&repository=app",
        None,
        [401, 404, 403, 200, 200, 200, 403, 401],
    ),
    (
        "POST",
        "/api/v1/cleanup/",
        {"registry": "{a}", "tag_pattern": "1.*", "protected": []},
        [401, 404, 403, 403, 200, 200, 403, 401],
    ),
    (
        "POST",
        "/api/v1/cleanup/",
        {"registry": "{a}", "tag_pattern": "nothing-*", "dry_run": False},
        [401, 404, 403, 403, 202, 202, 403, 401],
    ),
    ("GET", "/api/v1/scans/", None, [401, 200, 200, 200, 200, 200, 200, 401]),
    ("GET", "/api/v1/scans/?registry={a}", None, [401, 404, 200, 200, 200, 200, 200, 401]),
    (
        "GET",
        "/api/v1/scans/{digest}/findings/?registry={a}&severity=HIGH",
        None,
        [401, 404, 200, 200, 200, 200, 200, 401],
    ),
    (
        "GET",
        "/api/v1/vulnerabilities/?id=CVE-2024-0001",
        None,
        [401, 200, 200, 200, 200, 200, 200, 401],
    ),
    (
        "GET",
        "/api/v1/diff/?registry={a}&base={digest}&head={digest}",
        None,
        [401, 404, 200, 200, 200, 200, 200, 401],
    ),
    (
        "POST",
        "/api/scan",
        {"registry_id": "{a}", "repository": "app", "tag": "1.0"},
        [401, 404, 403, 202, 202, 202, 403, 401],
    ),
    (
        "GET",
        "/api/scan-results?registry_id={a}&repository=app&tag=1.0",
        None,
        [401, 404, 200, 200, 200, 200, 200, 401],
    ),
    ("GET", "/api/v1/audit/", None, [401, 403, 403, 403, 200, 200, 200, 401]),
    ("GET", "/api/v1/me/", None, [401, 200, 200, 200, 200, 200, 200, 401]),
]

CASES = [
    pytest.param(method, path, body, persona, expected[column], id=f"{method} {path} {persona}")
    for method, path, body, expected in TABLE
    for column, persona in enumerate(PERSONAS)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body", "persona", "expected"), CASES)
def test_status_code(
    api_client_for, personas, live_registry_a, scanned_image, method, path, body, persona, expected
):
    job = Job.objects.create(kind=Job.Kind.SYNC, registry=live_registry_a, target="registry-a")
    names = {
        "a": live_registry_a.pk,
        "carol": personas["carol"].pk,
        "job": job.pk,
        "digest": scanned_image.digest,
        "tag": scanned_image.tags.get(name="1.0").pk,
    }
    url = path.format(**names)
    if body:
        body = {
            key: value.format(**names) if isinstance(value, str) else value
            for key, value in body.items()
        }
    client = api_client_for(persona)

    response = client.generic(
        method, url, data=json.dumps(body) if body else "", content_type="application/json"
    )

    assert response.status_code == expected, response.content[:500]
    if response.status_code >= 400:
        assert "detail" in response.json()
