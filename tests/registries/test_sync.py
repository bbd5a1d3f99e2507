"""Syncing real registries into the cache: sizes, digests, indexes, auth, incremental work."""

import datetime as dt
import hashlib
import json

import pytest
import requests

from registries import sync
from registries.client import FetchedManifest
from registries.models import IndexChild, Manifest, Registry, Repository, Tag
from tests.support import images

pytestmark = pytest.mark.django_db


def skopeo_raw(skopeo, server, repository, reference):
    """(digest, size) as skopeo sees them: sha256 of the raw bytes, layers + config sizes."""
    separator = "@" if reference.startswith("sha256:") else ":"
    target = f"docker://{server.host}/{repository}{separator}{reference}"
    args = ["inspect", "--raw", "--tls-verify=false", "--authfile", str(skopeo.authfile)]
    raw = skopeo.run(*args, target).stdout.rstrip("\n").encode()
    document = json.loads(raw)
    size = sum(layer["size"] for layer in document.get("layers", []))
    size += document["config"]["size"] if "config" in document else 0
    return "sha256:" + hashlib.sha256(raw).hexdigest(), size, document


def test_image_digest_size_created_and_labels_match_the_registry(
    registry, registry_row, repo_name, skopeo
):
    created = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    image = images.build_image(created=created, labels={"org.opencontainers.image.title": "x"})
    images.push_image(registry.url, repo_name, "1.0", image)
    row = registry_row(registry, repositories=[repo_name])

    result = sync.sync_registry(row)

    tag = Tag.objects.select_related("manifest", "repository").get(name="1.0")
    digest, size, _ = skopeo_raw(skopeo, registry, repo_name, "1.0")
    manifest = tag.manifest
    assert (manifest.digest, manifest.size_bytes) == (digest, size)
    assert manifest.size_bytes == image.size
    assert manifest.media_type == images.OCI_MANIFEST
    assert manifest.created == created
    assert (manifest.os, manifest.architecture) == ("linux", "amd64")
    assert manifest.platforms == ["linux/amd64"]
    assert manifest.labels == {"org.opencontainers.image.title": "x"}
    assert manifest.config["config"]["Labels"] == manifest.labels
    assert manifest.raw.encode() == image.manifest
    assert [layer["digest"] for layer in manifest.layers] == [b.digest for b in image.layers]
    assert tag.repository.tag_count == 1
    assert tag.repository.size_bytes == image.size
    assert tag.repository.last_created == created
    assert result["added"] == 1
    row.refresh_from_db()
    assert row.health == Registry.Health.OK
    assert row.last_synced_at is not None


@pytest.mark.parametrize("media", ["oci", "docker"])
def test_index_lists_its_platforms_with_their_own_sizes_and_no_attestation(
    media, registry, registry_row, repo_name, skopeo
):
    index = images.build_platform_index(media=media, attestation=media == "oci")
    images.push_index(registry.url, repo_name, "multi", index)
    row = registry_row(registry, repositories=[repo_name])

    sync.sync_registry(row)

    manifest = Tag.objects.get(name="multi", repository__registry=row).manifest
    digest, _, document = skopeo_raw(skopeo, registry, repo_name, "multi")
    assert manifest.digest == digest == index.digest
    assert manifest.is_index
    assert manifest.platforms == ["linux/amd64", "linux/arm64/v8"]
    children = list(manifest.children.select_related("child"))
    assert len(children) == len(document["manifests"])
    platforms = [child for child in children if not child.is_attestation]
    assert [child.platform for child in platforms] == ["linux/amd64", "linux/arm64/v8"]
    blobs = {}
    for child, image in zip(platforms, index.children, strict=True):
        child_digest, child_size, _ = skopeo_raw(skopeo, registry, repo_name, child.digest)
        assert (child.child.digest, child.child.size_bytes) == (child_digest, child_size)
        assert child.child.size_bytes == image.size
        assert child.child.created == images.DEFAULT_CREATED
        assert child.child.architecture == image.architecture
        blobs.update({blob.digest: blob.size for blob in image.blobs})
    assert manifest.size_bytes == sum(blobs.values())
    attestations = [child for child in children if child.is_attestation]
    assert len(attestations) == (2 if media == "oci" else 0)
    assert all(child.platform == "unknown/unknown" for child in attestations)
    repository = Repository.objects.get(registry=row, name=repo_name)
    assert repository.size_bytes == manifest.size_bytes


def test_repository_size_counts_a_shared_layer_once(registry, registry_row, repo_name):
    pushed = images.push_many_tags(registry.url, repo_name, 3)
    row = registry_row(registry, repositories=[repo_name])

    sync.sync_registry(row)

    repository = Repository.objects.get(registry=row, name=repo_name)
    manifests = Manifest.objects.filter(tags__repository=repository)
    layer = manifests[0].layers[0]
    assert all(m.layers == [layer] for m in manifests)
    configs = sum(m.config_size for m in manifests)
    assert repository.size_bytes == layer["size"] + configs
    assert repository.tag_count == 3
    assert repository.last_created == max(tag.created for tag in pushed)


def test_no_change_resync_costs_one_request_per_tag_and_writes_nothing(
    fresh_registry, registry_row
):
    images.push_many_tags(fresh_registry.url, "team/app", 60)
    row = registry_row(fresh_registry)
    first = sync.sync_registry(row)
    assert (first["added"], first["tags"]) == (60, 60)
    # Per tag: its manifest and its config blob, plus the catalog and the tag list.
    assert first["requests"] == 2 + 2 * 60
    updated_at = dict(Tag.objects.values_list("name", "updated_at"))

    second = sync.sync_registry(row)

    assert (second["added"], second["changed"], second["removed"]) == (0, 0, 0)
    assert second["requests"] == 2 + 60
    assert second["requests"] / second["tags"] <= 1.05
    assert dict(Tag.objects.values_list("name", "updated_at")) == updated_at


def test_moved_tag_fetches_only_the_new_manifest(fresh_registry, registry_row):
    images.push_many_tags(fresh_registry.url, "team/app", 5)
    row = registry_row(fresh_registry)
    sync.sync_registry(row)
    newer = images.build_image(created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    images.push_image(fresh_registry.url, "team/app", "v00002", newer)

    result = sync.sync_registry(row)

    assert (result["added"], result["changed"], result["removed"]) == (0, 1, 0)
    # catalog + tag list + 5 conditional GETs (one answered in full) + one config blob
    assert result["requests"] == 2 + 5 + 1
    tag = Tag.objects.select_related("manifest").get(name="v00002")
    assert tag.manifest.digest == newer.digest
    assert tag.repository.last_created == newer.created


def test_tag_deleted_in_the_registry_is_removed_by_the_next_sync(fresh_registry, registry_row):
    pushed = images.push_many_tags(fresh_registry.url, "team/app", 3)
    row = registry_row(fresh_registry)
    sync.sync_registry(row)
    gone = pushed[0]
    images.delete_manifest(fresh_registry.url, "team/app", gone.digest).raise_for_status()

    result = sync.sync_registry(row)

    assert result["removed"] == 1
    assert set(Tag.objects.values_list("name", flat=True)) == {pushed[1].tag, pushed[2].tag}
    assert not Manifest.objects.filter(digest=gone.digest).exists()  # orphan cleaned up
    repository = Repository.objects.get(registry=row, name="team/app")
    assert repository.tag_count == 2


def test_repository_without_tags_stays_listed_but_empty(fresh_registry, registry_row):
    image = images.build_image()
    images.push_image(fresh_registry.url, "team/empty", "only", image)
    row = registry_row(fresh_registry)
    sync.sync_registry(row)
    images.delete_manifest(fresh_registry.url, "team/empty", image.digest).raise_for_status()

    sync.sync_registry(row)

    repository = Repository.objects.get(registry=row, name="team/empty")
    assert (repository.tag_count, repository.size_bytes) == (0, 0)
    assert not Manifest.objects.filter(registry=row).exists()
    assert not IndexChild.objects.exists()


def test_catalog_pages_are_all_followed(registry_factory, registry_row, settings):
    server = registry_factory(catalog_maxentries=2)
    image = images.build_image()
    names = [f"paged/repo-{number}" for number in range(5)]
    for name in names:
        images.push_image(server.url, name, "latest", image)
    settings.REGUI_REGISTRY_CATALOG_PAGE_SIZE = 2
    row = registry_row(server)

    sync.sync_registry(row)

    assert list(Repository.objects.filter(registry=row).values_list("name", flat=True)) == names
    assert Manifest.objects.filter(registry=row).count() == 1  # one digest, five tags


def test_htpasswd_registry(htpasswd_registry, registry_row, repo_name):
    session = images.registry_session(htpasswd_registry.username, htpasswd_registry.password)
    image = images.build_image(media="docker")
    images.push_image(htpasswd_registry.url, repo_name, "1.0", image, session)
    row = registry_row(htpasswd_registry, repositories=[repo_name])

    sync.sync_registry(row)

    manifest = Tag.objects.get(repository__registry=row, name="1.0").manifest
    assert (manifest.digest, manifest.size_bytes) == (image.digest, image.size)
    assert manifest.media_type == images.DOCKER_MANIFEST


def test_bearer_token_registry_through_its_catalog(token_registry, registry_row, repo_name):
    session = images.registry_session(token_registry.username, token_registry.password)
    index = images.build_platform_index()
    images.push_index(token_registry.url, repo_name, "multi", index, session)
    row = registry_row(token_registry)

    sync.sync_registry(row)

    manifest = Tag.objects.get(repository__registry=row, repository__name=repo_name).manifest
    assert manifest.digest == index.digest
    assert manifest.platforms == ["linux/amd64", "linux/arm64/v8"]
    row.refresh_from_db()
    assert row.health == Registry.Health.OK


def test_wrong_credentials_mark_the_registry_unhealthy(htpasswd_registry, registry_row):
    row = registry_row(htpasswd_registry)
    row.secret = "wrong-password"
    row.save()

    with pytest.raises(sync.RegistryError):
        sync.sync_registry(row)

    row.refresh_from_db()
    assert row.health == Registry.Health.ERROR
    assert "401" in row.health_message


def test_parse_manifest_refuses_bad_descriptors():
    bad = images.build_image().manifest_json
    bad["layers"][0]["size"] = "big"
    content = json.dumps(bad).encode()
    with pytest.raises(sync.ProtocolError, match="layer 0"):
        sync.parse_manifest(FetchedManifest("sha256:x", images.OCI_MANIFEST, content))


def test_an_image_whose_config_blob_is_gone_is_kept_without_its_details(
    fresh_registry, registry_row
):
    image = images.build_image()
    images.push_image(fresh_registry.url, "team/broken", "1.0", image)
    gone = requests.delete(
        f"{fresh_registry.url}/v2/team/broken/blobs/{image.config.digest}", timeout=10
    )
    assert gone.status_code == 202
    row = registry_row(fresh_registry)

    sync.sync_registry(row)

    manifest = Tag.objects.get(repository__registry=row, name="1.0").manifest
    assert manifest.digest == image.digest
    assert manifest.size_bytes == image.size  # sizes come from the manifest itself
    assert (manifest.created, manifest.config) == (None, {})
