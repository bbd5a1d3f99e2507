"""The scan policy through the real sync: new digests are scanned once, with real layers."""

import pytest

from jobs.models import Job
from registries.models import Manifest
from registries.sync import sync_registry
from scanning import services
from tests.support import images
from tests.support.scanning_fixtures import apk_layer_digest, fixture_index, registry_row

pytestmark = pytest.mark.django_db


def test_sync_of_a_new_index_scans_its_platforms_once(
    trivy_settings, fresh_registry, django_capture_on_commit_callbacks
):
    registry = registry_row(fresh_registry, name="synced", scan_new_images=True)
    index = fixture_index()
    images.push_index(fresh_registry.url, "team/app", "1.0", index)
    images.push_index(fresh_registry.url, "team/app", "latest", index)

    with django_capture_on_commit_callbacks(execute=True):
        sync_registry(registry)
    with django_capture_on_commit_callbacks(execute=True):
        sync_registry(registry)  # nothing new: nothing queued

    jobs = Job.objects.filter(kind="scan")
    assert [(job.digest, job.status) for job in jobs] == [(index.digest, "succeeded")]
    amd64, arm64 = index.children
    assert services.latest_scan(index.digest).total == 9
    arm64_scan = services.latest_scan(arm64.digest)
    assert {f.layer_digest for f in arm64_scan.findings.all()} == {apk_layer_digest(arm64)}
    manifest = Manifest.objects.get(registry=registry, digest=index.digest)
    layers = services.scan_results(manifest)["layers"]
    assert [layer["digest"] for layer in layers] == [blob.digest for blob in amd64.layers]
    assert [layer["total"] for layer in layers] == [0, 6]
