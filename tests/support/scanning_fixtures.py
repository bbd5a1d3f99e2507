"""Fixtures for scanning tests: Trivy settings for the fixture DB, fixture images, cache rows.

The fixture images carry the packages of tests.support.trivy_db.FIXTURE_PACKAGES, so a scan
with the fixture DB must report exactly EXPECTED_FINDINGS. Their apk layer comes second, after
an unrelated first layer, so a finding's layer digest is only right if it is really mapped.
"""

import gzip
import io
import json
import subprocess
import tarfile
import time

import pytest
import requests

from registries.models import IndexChild, Manifest, Registry, Repository, Tag
from tests.support import images
from tests.support.registry_server import free_port
from tests.support.trivy_db import FIXTURE_PACKAGES, write_trivy_db


def fixture_image(arch="amd64"):
    base = images.build_layer({"etc/motd": f"RegUI scanning fixture ({arch})\n"})
    apk_layer = images.alpine_layer(FIXTURE_PACKAGES[arch], arch)
    return images.image_from_layers([base, apk_layer], arch=arch)


def fixture_index():
    """amd64 and arm64 fixture images and their attestations (never to be scanned)."""
    return images.build_index([fixture_image("amd64"), fixture_image("arm64")], attestation=True)


def apk_layer_digest(image):
    return image.layers[1].digest


def _manifest_row(registry, image):
    config = json.loads(image.config.data)
    manifest, _ = Manifest.objects.get_or_create(
        registry=registry,
        digest=image.digest,
        defaults={
            "media_type": image.media_type,
            "size_bytes": image.size,
            "config_digest": image.config.digest,
            "config_size": image.config.size,
            "os": image.os,
            "architecture": image.architecture,
            "variant": image.variant or "",
            "platforms": [f"{image.os}/{image.architecture}"],
            "layers": [
                {"digest": layer.digest, "size": layer.size, "media_type": media_type}
                for layer, media_type in zip(
                    image.layers,
                    [entry["mediaType"] for entry in json.loads(image.manifest)["layers"]],
                    strict=True,
                )
            ],
            "config": config,
            "raw": image.manifest.decode(),
        },
    )
    return manifest


def _index_row(registry, index):
    manifest, created = Manifest.objects.get_or_create(
        registry=registry,
        digest=index.digest,
        defaults={
            "media_type": index.media_type,
            "is_index": True,
            "size_bytes": index.size,
            "platforms": [f"{c.os}/{c.architecture}" for c in index.children],
            "raw": index.manifest.decode(),
        },
    )
    if created:
        for position, entry in enumerate(index.manifest_json["manifests"]):
            child = next(m for m in index.manifests if m.digest == entry["digest"])
            attestation = child in index.attestations
            IndexChild.objects.create(
                index=manifest,
                child=_manifest_row(registry, child),
                digest=child.digest,
                media_type=child.media_type,
                os=entry["platform"]["os"],
                architecture=entry["platform"]["architecture"],
                is_attestation=attestation,
                position=position,
            )
    return manifest


def cache_rows(registry, repository, tag, pushed):
    """The Repository/Manifest/Tag rows a sync keeps for an image or index pushed as `tag`."""
    repo, _ = Repository.objects.get_or_create(registry=registry, name=repository)
    if isinstance(pushed, images.Index):
        manifest = _index_row(registry, pushed)
    else:
        manifest = _manifest_row(registry, pushed)
    Tag.objects.update_or_create(repository=repo, name=tag, defaults={"manifest": manifest})
    return manifest


def registry_row(server, name=None, **fields):
    """A Registry row for a running RegistryServer, with its credentials if it has any."""
    registry = Registry(
        name=name or f"reg-{server.port}",
        url=server.url,
        username=getattr(server, "username", None) or "",
        **fields,
    )
    registry.secret = getattr(server, "password", None) or ""
    registry.save()
    return registry


def push_and_cache(server, registry, repository, tag, pushed):
    session = images.registry_session(
        getattr(server, "username", None), getattr(server, "password", None)
    )
    if isinstance(pushed, images.Index):
        images.push_index(server.url, repository, tag, pushed, session)
    else:
        images.push_image(server.url, repository, tag, pushed, session)
    return cache_rows(registry, repository, tag, pushed)


@pytest.fixture
def trivy_settings(settings, make_trivy_cache_dir, trivy_bin):
    """Offline Trivy with a fresh fixture DB in the cache root (workers copy it)."""
    settings.REGUI_TRIVY_BIN = str(trivy_bin)
    settings.REGUI_TRIVY_CACHE_DIR = str(make_trivy_cache_dir())
    settings.REGUI_TRIVY_SERVER = ""
    settings.REGUI_TRIVY_TOKEN = ""
    settings.REGUI_TRIVY_SKIP_DB_UPDATE = True
    settings.REGUI_TRIVY_OFFLINE_SCAN = True
    settings.REGUI_TRIVY_DB_REPOSITORY = ""
    settings.REGUI_TRIVY_TIMEOUT = 60
    return settings


@pytest.fixture
def open_registry(db, registry):
    """A Registry row for the session's open registry."""
    return registry_row(registry, name="open")


TRIVY_DB_LAYER = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
TRIVY_DB_CONFIG = "application/vnd.aquasec.trivy.config.v1+json"


def publish_trivy_db(server, reference, workdir, **db_options):
    """Push a fixture DB to `server` as Trivy's OCI artifact (a DB mirror), as `repo:tag`.

    The layer is a gzipped tar of trivy.db and metadata.json; Trivy insists on the title
    annotation. `db_options` go to write_trivy_db (advisories, updated_at).
    """
    db_dir = write_trivy_db(workdir, **db_options) / "db"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name in ("trivy.db", "metadata.json"):
            tar.add(db_dir / name, arcname=name)
    layer = images.Blob.of(gzip.compress(archive.getvalue(), mtime=0))
    config = images.Blob.of(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "artifactType": TRIVY_DB_CONFIG,
        "config": {"mediaType": TRIVY_DB_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [
            {
                "mediaType": TRIVY_DB_LAYER,
                "digest": layer.digest,
                "size": layer.size,
                "annotations": {"org.opencontainers.image.title": "db.tar.gz"},
            }
        ],
    }
    repository, tag = reference.rsplit(":", 1)
    for blob in (layer, config):
        images.push_blob(server.url, repository, blob)
    images.push_manifest(
        server.url, repository, tag, json.dumps(manifest).encode(), images.OCI_MANIFEST
    )
    return f"{server.host}/{reference}"


TRIVY_SERVER_TOKEN = "trivy-server-token-3c9e"


@pytest.fixture(scope="session")
def trivy_server(tmp_path_factory, trivy_bin):
    """A real `trivy server` with the fixture DB, requiring TRIVY_SERVER_TOKEN; its URL."""
    cache_dir = write_trivy_db(tmp_path_factory.mktemp("trivy-server"))
    url = f"http://127.0.0.1:{free_port()}"
    log = (cache_dir / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(trivy_bin),
            "server",
            "--listen",
            url.removeprefix("http://"),
            "--cache-dir",
            str(cache_dir),
            "--skip-db-update",
            "--token",
            TRIVY_SERVER_TOKEN,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(
                    f"trivy server did not start: {(cache_dir / 'server.log').read_text()}"
                )
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
