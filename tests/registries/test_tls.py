"""HTTPS registries: a private CA trusted through `ca_bundle`, or verification switched off.

The registry is the real distribution server with a certificate of a throwaway test CA
(tests/support/tls.py), which no system trust store knows.
"""

import re

import pytest

from registries import sync
from registries.client import RegistryClient, RegistryUnavailable
from registries.models import Manifest, Registry, Tag
from tests.support import images
from tests.support.tls import make_certificates

pytestmark = pytest.mark.django_db


def assert_readable_tls_error(message, server):
    """The message says it is TLS, that the certificate failed verification, and where."""
    assert "TLS" in message
    assert re.search(r"certificate verif(y|ication) failed", message, re.IGNORECASE), message
    assert server.host in message


@pytest.fixture
def pushed_image(tls_registry, repo_name):
    image = images.build_image(labels={"org.example.team": "platform"})
    session = images.registry_session()
    session.verify = str(tls_registry.ca_path)
    session.trust_env = False  # or REQUESTS_CA_BUNDLE, if set, would win over `verify`
    images.push_image(tls_registry.url, repo_name, "1.0", image, session)
    return image


def cached_tags(row):
    return list(
        Tag.objects.filter(repository__registry=row).values_list(
            "repository__name", "name", "manifest__digest", "manifest__size_bytes"
        )
    )


def test_sync_trusts_the_registry_through_its_ca_bundle(
    tls_registry, registry_row, repo_name, pushed_image
):
    row = registry_row(tls_registry, repositories=[repo_name], ca_bundle=tls_registry.ca_pem)
    assert row.url.startswith("https://") and row.verify_tls

    result = sync.sync_registry(row)

    assert result["added"] == 1
    assert cached_tags(row) == [(repo_name, "1.0", pushed_image.digest, pushed_image.size)]
    tag = Tag.objects.select_related("repository", "manifest").get(repository__registry=row)
    assert tag.repository.size_bytes == pushed_image.size
    assert tag.manifest.labels == {"org.example.team": "platform"}
    row.refresh_from_db()
    assert row.health == Registry.Health.OK
    assert row.last_synced_at is not None


def test_sync_without_verification_needs_no_ca(tls_registry, registry_row, repo_name, pushed_image):
    row = registry_row(tls_registry, repositories=[repo_name], verify_tls=False)

    sync.sync_registry(row)

    assert cached_tags(row) == [(repo_name, "1.0", pushed_image.digest, pushed_image.size)]
    row.refresh_from_db()
    assert row.health == Registry.Health.OK


def test_unverifiable_certificate_fails_the_sync_readably_and_keeps_the_cache(
    tls_registry, registry_row, repo_name, pushed_image
):
    row = registry_row(tls_registry, repositories=[repo_name], ca_bundle=tls_registry.ca_pem)
    sync.sync_registry(row)
    cached = cached_tags(row)
    assert len(cached) == 1
    row.ca_bundle = ""
    row.save()

    with pytest.raises(RegistryUnavailable) as failure:
        sync.sync_registry(row)

    assert_readable_tls_error(str(failure.value), tls_registry)
    row.refresh_from_db()
    assert row.health == Registry.Health.ERROR
    assert row.health_message == f"Sync failed: {failure.value}"
    assert cached_tags(row) == cached
    assert Manifest.objects.filter(registry=row).count() == 1


def registry_for(server, **fields):
    return Registry(name=f"tls-{server.port}", url=server.url, **fields)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_probe_with_the_ca_bundle_reports_a_reachable_registry(tls_registry, host):
    registry = registry_for(tls_registry, ca_bundle=tls_registry.ca_pem)
    registry.url = f"https://{host}:{tls_registry.port}"

    with RegistryClient(registry) as client:
        report = client.probe()

    assert report.ok, report.summary()
    assert (report.reachable, report.auth_scheme, report.delete_enabled) == (True, "none", True)
    assert report.lines()[0] == f"Reachable: {registry.url}"


@pytest.mark.parametrize("trusted", ["nothing", "another CA"])
def test_probe_without_the_right_ca_reports_a_readable_tls_error(tls_registry, trusted, tmp_path):
    ca_bundle = ""
    if trusted == "another CA":
        ca_bundle = make_certificates(tmp_path, common_name="Some other CA").ca_pem
    registry = registry_for(tls_registry, ca_bundle=ca_bundle)

    with RegistryClient(registry) as client:
        report = client.probe()

    assert not report.reachable and not report.ok
    assert_readable_tls_error(report.error, tls_registry)
    assert report.lines() == [report.error]
