"""The registry client against real distribution registries (open, htpasswd, token, faults)."""

import hashlib
import json

import pytest

from registries import client as registry_client
from registries.client import (
    AuthenticationFailed,
    DeleteNotSupported,
    NotFound,
    ProtocolError,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
)
from registries.models import Registry
from tests.support import images


def registry_for(server, *, username=None, password=None, **fields):
    registry = Registry(name=f"r{server.port}", url=server.url, **fields)
    registry.username = username or ""
    registry.secret = password or ""
    return registry


def client_for(server, **kwargs):
    return RegistryClient(registry_for(server, **kwargs))


@pytest.fixture
def pushed_image(registry, repo_name):
    image = images.build_image(labels={"org.example.team": "platform"})
    images.push_image(registry.url, repo_name, "1.0", image)
    return image


def test_manifest_digest_media_type_and_bytes_match_the_registry(registry, repo_name, pushed_image):
    with client_for(registry) as client:
        digest, media_type, content = client.manifest(repo_name, "1.0")
    assert digest == pushed_image.digest
    assert media_type == images.OCI_MANIFEST
    assert content == pushed_image.manifest
    assert "sha256:" + hashlib.sha256(content).hexdigest() == digest


def test_docker_v2_manifest_is_not_converted_to_schema1(registry, repo_name):
    image = images.build_image(media="docker")
    images.push_image(registry.url, repo_name, "docker", image)
    with client_for(registry) as client:
        fetched = client.manifest(repo_name, "docker")
    assert fetched.digest == image.digest
    assert fetched.media_type == images.DOCKER_MANIFEST


def test_conditional_requests_answer_not_modified_for_the_current_digest(
    registry, repo_name, pushed_image
):
    with client_for(registry) as client:
        assert client.manifest(repo_name, "1.0", if_none_match=pushed_image.digest) is None
        assert client.manifest_digest(repo_name, "1.0") == pushed_image.digest
        assert client.manifest_digest(repo_name, "1.0", if_none_match=pushed_image.digest) is None
        stale = "sha256:" + "1" * 64
        assert client.manifest(repo_name, "1.0", if_none_match=stale).digest == pushed_image.digest


def test_blob_json_returns_the_config(registry, repo_name, pushed_image):
    with client_for(registry) as client:
        config = client.blob_json(repo_name, pushed_image.config.digest)
    assert config == pushed_image.config_json
    assert config["config"]["Labels"] == {"org.example.team": "platform"}


def test_tags_and_missing_things(registry, repo_name, pushed_image):
    with client_for(registry) as client:
        assert client.tags(repo_name) == ["1.0"]
        with pytest.raises(NotFound, match="MANIFEST_UNKNOWN"):
            client.manifest(repo_name, "no-such-tag")
        with pytest.raises(NotFound, match="NAME_UNKNOWN"):
            client.tags(repo_name + "-missing")


def test_catalog_follows_every_link_page(registry_factory, settings):
    server = registry_factory(catalog_maxentries=2)
    names = [f"team/app-{number}" for number in range(5)]
    image = images.build_image()
    for name in names:
        images.push_image(server.url, name, "latest", image)
    settings.REGUI_REGISTRY_CATALOG_PAGE_SIZE = 2
    with client_for(server) as client:
        assert client.catalog() == names
        assert client.requests_made >= 3


def test_catalog_refuses_more_pages_than_the_cap(registry_factory, settings):
    server = registry_factory()
    for number in range(3):
        images.push_image(server.url, f"many/app-{number}", "latest", images.build_image())
    settings.REGUI_REGISTRY_CATALOG_PAGE_SIZE = 1
    settings.REGUI_REGISTRY_MAX_PAGES = 2
    with client_for(server) as client, pytest.raises(ProtocolError, match="more than 2 pages"):
        client.catalog()


def test_delete_manifest_by_digest(registry, repo_name, pushed_image):
    with client_for(registry) as client:
        client.delete_manifest(repo_name, pushed_image.digest)
        with pytest.raises(NotFound):
            client.delete_manifest(repo_name, pushed_image.digest)
        with pytest.raises(NotFound):
            client.manifest(repo_name, "1.0")


def test_delete_on_a_registry_without_delete_says_how_to_enable_it(registry_factory, repo_name):
    server = registry_factory(delete_enabled=False)
    image = images.build_image()
    images.push_image(server.url, repo_name, "1.0", image)
    with client_for(server) as client, pytest.raises(DeleteNotSupported) as caught:
        client.delete_manifest(repo_name, image.digest)
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in str(caught.value)
    assert "UNSUPPORTED" in str(caught.value)


def test_probe_open_registry_with_delete(registry):
    with client_for(registry) as client:
        report = client.probe()
    assert report.reachable and report.ok
    assert report.auth_scheme == "none"
    assert report.catalog_ok is True
    assert report.delete_enabled is True
    assert "Deletes: enabled" in report.summary()


def test_probe_sees_delete_disabled(registry_factory):
    server = registry_factory(delete_enabled=False)
    with client_for(server) as client:
        report = client.probe()
    assert report.ok
    assert report.delete_enabled is False


def test_probe_stopped_registry_says_it_cannot_connect(registry_factory):
    server = registry_factory()
    server.stop()
    with client_for(server) as client:
        report = client.probe()
    assert not report.reachable
    assert report.summary().startswith(f"cannot connect to {server.url}/v2/")
    assert "refused" in report.summary().lower()


def test_basic_auth_registry(htpasswd_registry, repo_name):
    image = images.build_image()
    session = images.registry_session(htpasswd_registry.username, htpasswd_registry.password)
    images.push_image(htpasswd_registry.url, repo_name, "1.0", image, session)
    credentials = {"username": htpasswd_registry.username, "password": htpasswd_registry.password}
    with client_for(htpasswd_registry, **credentials) as client:
        report = client.probe()
        assert report.auth_scheme == "basic"
        assert report.credentials_ok is True
        assert repo_name in client.catalog()
        assert client.manifest(repo_name, "1.0").digest == image.digest


def test_basic_auth_with_a_wrong_password_fails_clearly(htpasswd_registry):
    with client_for(htpasswd_registry, username="alice", password="wrong") as client:
        report = client.probe()
        assert report.reachable
        assert report.credentials_ok is False
        assert "401" in report.error
        with pytest.raises(AuthenticationFailed):
            client.catalog()


def test_basic_auth_without_credentials_says_so(htpasswd_registry):
    with client_for(htpasswd_registry) as client:
        report = client.probe()
    assert report.auth_scheme == "basic"
    assert "requires credentials" in report.error


def test_bearer_token_registry(token_registry, repo_name):
    image = images.build_image()
    session = images.registry_session(token_registry.username, token_registry.password)
    images.push_image(token_registry.url, repo_name, "1.0", image, session)
    credentials = {"username": token_registry.username, "password": token_registry.password}
    with client_for(token_registry, **credentials) as client:
        report = client.probe()
        assert report.auth_scheme == "bearer"
        assert report.credentials_ok is True
        assert report.catalog_ok is True
        assert report.delete_enabled is True
        assert repo_name in client.catalog()
        assert client.tags(repo_name) == ["1.0"]
        assert client.manifest(repo_name, "1.0").digest == image.digest
        before = client.requests_made
        client.manifest(repo_name, "1.0")
        # The token for this repository is cached: one request, no challenge, no token call.
        assert client.requests_made == before + 1


def test_bearer_token_with_wrong_password(token_registry):
    with client_for(token_registry, username=token_registry.username, password="nope") as client:
        report = client.probe()
    assert report.credentials_ok is False
    assert "token service" in report.error


def test_server_errors_are_retried_then_reported(
    fault_proxy, registry, settings, repo_name, pushed_image
):
    settings.REGUI_REGISTRY_MAX_RETRY_WAIT = 0.05
    fault_proxy.error(503, path="/manifests/")
    registry_row = registry_for(registry)
    registry_row.url = fault_proxy.url
    with RegistryClient(registry_row) as client, pytest.raises(RegistryUnavailable) as caught:
        client.manifest(repo_name, "1.0")
    assert "503" in str(caught.value)
    assert fault_proxy.count("/manifests/") == 1 + client.retries


def test_hang_past_the_read_timeout(fault_proxy, registry, repo_name, pushed_image):
    fault_proxy.hang(10, path="/manifests/")
    registry_row = registry_for(registry)
    registry_row.url = fault_proxy.url
    with (
        RegistryClient(registry_row, read_timeout=0.5) as client,
        pytest.raises(RegistryUnavailable, match="did not answer within 0.5 s"),
    ):
        client.manifest(repo_name, "1.0")


def test_malformed_json_and_oversized_bodies_are_refused(
    fault_proxy, registry, settings, repo_name, pushed_image
):
    registry_row = registry_for(registry)
    registry_row.url = fault_proxy.url
    fault_proxy.malformed_json(path="/tags/list")
    with RegistryClient(registry_row) as client, pytest.raises(ProtocolError, match="malformed"):
        client.tags(repo_name)
    fault_proxy.clear()
    settings.REGUI_REGISTRY_MAX_BODY_BYTES = 1024 * 1024
    fault_proxy.oversized(5 * 1024 * 1024, path="/_catalog")
    with RegistryClient(registry_row) as client, pytest.raises(ProtocolError, match="1048576"):
        client.catalog()
    fault_proxy.clear()
    fault_proxy.oversized(5 * 1024 * 1024, path="/tags/list", declare_length=False)
    with RegistryClient(registry_row) as client, pytest.raises(ProtocolError, match="1048576"):
        client.tags(repo_name)


def test_retry_after_is_honoured_and_bounded(fault_proxy, registry, repo_name, pushed_image):
    fault_proxy.error(429, path="/manifests/", times=1, headers={"Retry-After": "1"})
    registry_row = registry_for(registry)
    registry_row.url = fault_proxy.url
    with RegistryClient(registry_row) as client:
        assert client.manifest(repo_name, "1.0").digest == pushed_image.digest
    assert fault_proxy.count("/manifests/") == 2


def test_error_text_uses_the_registry_words():
    class Answer:
        reason = "Method Not Allowed"

        def json(self):
            return json.loads('{"errors": [{"code": "UNSUPPORTED", "message": "unsupported"}]}')

    assert registry_client.error_text(Answer()) == "UNSUPPORTED: unsupported"


def test_next_link_and_challenge_parsing():
    assert registry_client.next_link('</v2/_catalog?last=b&n=2>; rel="next"') == (
        "/v2/_catalog?last=b&n=2"
    )
    assert registry_client.next_link("") is None
    scheme, params = registry_client.parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull",
    }


# Redirects: followed for reads only, at most MAX_REDIRECTS hops, credentials kept to one origin.


def _blob_requests(proxy, digest):
    return [request for request in proxy.seen if f"/blobs/{digest}" in request.path]


def test_cross_origin_blob_redirect_drops_the_credentials(
    fault_proxy_factory, htpasswd_registry, registry, repo_name
):
    # The same blobs on both registries: the open one stands in for blob storage (S3 and the
    # like), which answers a redirect's signed URL without the registry's credentials.
    image = images.build_image(labels={"org.example.team": "storage"})
    session = images.registry_session(htpasswd_registry.username, htpasswd_registry.password)
    images.push_image(htpasswd_registry.url, repo_name, "1.0", image, session)
    images.push_image(registry.url, repo_name, "1.0", image)
    storage = fault_proxy_factory(registry)
    front = fault_proxy_factory(htpasswd_registry)  # another port: another origin
    front.redirect(storage.url, path="/blobs/", method="GET")
    credentials = {"username": htpasswd_registry.username, "password": htpasswd_registry.password}
    with client_for(front, **credentials) as client:
        # As a sync does: the manifest first (the client learns Basic auth), then the config.
        assert client.manifest(repo_name, "1.0").digest == image.digest
        assert client.blob_json(repo_name, image.config.digest) == image.config_json
    assert [(r.fault, r.authorized) for r in _blob_requests(front, image.config.digest)] == [
        ("redirect", True)
    ]
    assert [(r.method, r.authorized) for r in _blob_requests(storage, image.config.digest)] == [
        ("GET", False)
    ]
    assert not any(request.authorized for request in storage.seen)


def test_same_origin_blob_redirect_keeps_the_credentials(
    fault_proxy_factory, htpasswd_registry, repo_name
):
    image = images.build_image()
    session = images.registry_session(htpasswd_registry.username, htpasswd_registry.password)
    images.push_image(htpasswd_registry.url, repo_name, "1.0", image, session)
    front = fault_proxy_factory(htpasswd_registry)
    front.redirect(front.url, path="/blobs/", method="GET", times=1)  # to itself, once
    credentials = {"username": htpasswd_registry.username, "password": htpasswd_registry.password}
    with client_for(front, **credentials) as client:
        client.manifest(repo_name, "1.0")
        # The registry behind answers 401 to the second hop unless it carries the credentials.
        assert client.blob_json(repo_name, image.config.digest) == image.config_json
    assert [(r.fault, r.authorized) for r in _blob_requests(front, image.config.digest)] == [
        ("redirect", True),
        (None, True),
    ]


def test_redirect_loop_stops_after_the_cap(fault_proxy, repo_name, pushed_image):
    fault_proxy.redirect(fault_proxy.url, path="/blobs/")  # the same URL, every time
    with (
        client_for(fault_proxy) as client,
        pytest.raises(ProtocolError, match="redirected more than 5 times"),
    ):
        client.blob_json(repo_name, pushed_image.config.digest)
    assert registry_client.MAX_REDIRECTS == 5
    assert fault_proxy.count("/blobs/") == 1 + registry_client.MAX_REDIRECTS


def test_delete_answered_with_a_redirect_is_not_followed(fault_proxy_factory, registry, repo_name):
    front = fault_proxy_factory(registry)
    elsewhere = fault_proxy_factory(registry)
    front.redirect(elsewhere.url, path=f"/manifests/{registry_client.PROBE_DIGEST}")
    with client_for(front) as client, pytest.raises(RegistryError) as caught:
        client.delete_manifest(repo_name, registry_client.PROBE_DIGEST)
    # Followed, the delete would have reached the registry and come back NotFound.
    assert type(caught.value) is RegistryError
    assert caught.value.status == 307
    assert "answered HTTP 307" in str(caught.value)
    assert front.count("/manifests/", method="DELETE") == 1
    assert elsewhere.requests_seen == 0
