"""API fixtures: a client per persona, including the two token personas."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import ApiToken
from registries.models import Manifest, Repository, Tag
from scanning.models import Finding, Scan

# Requests sent by the schemathesis fuzz test (test_fuzz.py), reported after the run.
FUZZ_REQUESTS = {"count": 0}

TOKEN_PERSONAS = {"readonly_token": {"read_only": True}, "expired_token": {"expires_days": 1}}


def pytest_terminal_summary(terminalreporter):
    if FUZZ_REQUESTS["count"]:
        terminalreporter.write_line(f"schemathesis: {FUZZ_REQUESTS['count']} generated requests")


def bearer_client(value):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return client


@pytest.fixture
def api_client_for(personas):
    """api_client_for(name): an APIClient acting as a persona.

    "readonly_token" and "expired_token" are API tokens of alice (admin of A), so what they
    are refused is refused because of the token, not the role.
    """

    def make(name):
        if name in TOKEN_PERSONAS:
            token, value = tokens.issue(personas["alice"], name=name, **TOKEN_PERSONAS[name])
            if name == "expired_token":
                ApiToken.objects.filter(pk=token.pk).update(
                    expires_at=timezone.now() - dt.timedelta(seconds=1)
                )
            return bearer_client(value)
        client = APIClient()
        if personas[name].is_authenticated:
            client.force_login(personas[name])
        return client

    return make


@pytest.fixture
def cached_image(registry_a):
    """A repository "app" in registry A with tags 1.0 and latest on one cached image."""
    repository = Repository.objects.create(registry=registry_a, name="app", tag_count=2)
    manifest = Manifest.objects.create(
        registry=registry_a,
        digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size_bytes=3000,
        config_digest="sha256:" + "c" * 64,
        config_size=1000,
        created=timezone.now() - dt.timedelta(days=3),
        os="linux",
        architecture="amd64",
        platforms=["linux/amd64"],
        layers=[{"digest": "sha256:" + "1" * 64, "size": 2000, "media_type": "layer"}],
        config={"architecture": "amd64", "os": "linux"},
    )
    for name in ("1.0", "latest"):
        Tag.objects.create(repository=repository, name=name, manifest=manifest)
    return manifest


@pytest.fixture
def scanned_image(cached_image):
    """cached_image with a scan result: one fixable HIGH finding."""
    scan = Scan.objects.create(
        digest=cached_image.digest,
        status=Scan.Status.SUCCEEDED,
        finished_at=timezone.now(),
        high=1,
        total=1,
        fixable=1,
    )
    Finding.objects.create(
        scan=scan,
        vulnerability_id="CVE-2024-0001",
        package="openssl",
        installed_version="3.1.0-r0",
        fixed_version="3.1.4-r0",
        severity="HIGH",
        layer_digest=cached_image.layers[0]["digest"],
    )
    return cached_image
