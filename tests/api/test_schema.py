"""The OpenAPI schema is valid and complete, and its docs page loads nothing from outside."""

import re

import pytest
from django.core.management import call_command

EXPECTED_PATHS = {
    "/api/v1/registries/",
    "/api/v1/registries/{id}/",
    "/api/v1/registries/{id}/test/",
    "/api/v1/registries/{id}/sync/",
    "/api/v1/registries/{registry_pk}/members/",
    "/api/v1/registries/{registry_pk}/members/{user_id}/",
    "/api/v1/jobs/",
    "/api/v1/jobs/{id}/",
    "/api/v1/repositories/",
    "/api/v1/tags/",
    "/api/v1/tags/{id}/",
    "/api/v1/images/{digest}/",
    "/api/v1/cleanup/",
    "/api/v1/scans/",
    "/api/v1/scans/{digest}/findings/",
    "/api/v1/vulnerabilities/",
    "/api/v1/diff/",
    "/api/v1/audit/",
    "/api/v1/me/",
    "/api/scan",
    "/api/scan-results",
}


def test_schema_validates_without_warnings(tmp_path):
    # Raises (exit status 1) on any warning or an invalid OpenAPI document.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


@pytest.mark.django_db
def test_schema_lists_every_endpoint_and_the_token_scheme(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert set(schema["paths"]) >= EXPECTED_PATHS
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    # The secret can be written, never read back.
    schemas = schema["components"]["schemas"]
    assert "secret" in schemas["RegistryRequest"]["properties"]
    assert "secret" not in schemas["Registry"]["properties"]


@pytest.mark.django_db
def test_docs_page_uses_only_local_assets(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""["'](https?://[^"']+)["']""", html)
    assert urls
    assert not [url for url in urls if url.startswith(("http:", "https:", "//"))]
    # The CSP allows scripts from this site only: no inline script may be needed.
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    for url in urls:
        assert client.get(url).status_code == 200, url
