"""The offline Trivy harness: real Trivy 0.59.1 scans against the DB the suite writes itself.

No Django here: ``pytest tests/scanning/test_trivy_harness.py -p no:django``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.alpine_rootfs import alpine_layer_files
from tests.support.boltdb import (
    BRANCH_PAGE,
    FORMAT_VERSION,
    MAGIC,
    PAGE_HEADER,
    PAGE_SIZE,
    build_bolt_file,
    fnv1a_64,
)
from tests.support.trivy_db import (
    DEFAULT_UPDATED_AT,
    EXPECTED_FINDINGS,
    FIXTURE_ADVISORIES,
    FIXTURE_PACKAGES,
    NEWER_DB_ADVISORY,
    NEWER_DB_FINDINGS,
    PACKAGES_WITHOUT_ADVISORY,
    ExpectedFinding,
    FixtureAdvisory,
)
from tests.support.trivy_fixtures import scan_image_input, trivy_db_info

# The fixtures (trivy_cache_dir, make_trivy_cache_dir) come from tests.support.trivy_fixtures,
# registered as a plugin by tests/conftest.py.

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class BuiltImage:
    path: Path
    layer_digest: str  # of the gzip blob, as a registry manifest lists it
    diff_id: str  # of the uncompressed tar, as the config's rootfs.diff_ids lists it
    config_digest: str


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _as_bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else content


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _image_parts(architecture: str) -> tuple[bytes, bytes]:
    """The uncompressed layer and the config of a fixture image."""
    layer = _tar(alpine_layer_files(FIXTURE_PACKAGES[architecture], architecture=architecture))
    config = {
        "architecture": architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]},
        "config": {},
    }
    return layer, json.dumps(config).encode()


def build_oci_layout(directory: Path, architecture: str) -> BuiltImage:
    """An OCI image layout directory (Trivy's ``--input`` wants it unpacked)."""
    layer, config = _image_parts(architecture)
    blob = gzip.compress(layer, mtime=0)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha256(blob),
                    "size": len(blob),
                }
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": _sha256(manifest), "size": len(manifest)}
        ],
    }
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for content in (blob, config, manifest):
        (blobs / _sha256(content).removeprefix("sha256:")).write_bytes(content)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps(index))
    return BuiltImage(directory, _sha256(blob), _sha256(layer), _sha256(config))


def build_docker_archive(path: Path, architecture: str) -> BuiltImage:
    """A ``docker save`` style tar: uncompressed layer, so no compressed digest exists."""
    layer, config = _image_parts(architecture)
    manifest = [{"Config": "config.json", "RepoTags": [], "Layers": ["layer.tar"]}]
    files = {"config.json": config, "layer.tar": layer, "manifest.json": json.dumps(manifest)}
    path.write_bytes(_tar({name: _as_bytes(content) for name, content in files.items()}))
    return BuiltImage(path, "", _sha256(layer), _sha256(config))


def os_package_findings(report: dict) -> list[ExpectedFinding]:
    return sorted(
        ExpectedFinding(
            vuln["VulnerabilityID"],
            vuln["PkgName"],
            vuln["InstalledVersion"],
            vuln.get("FixedVersion", ""),
            vuln["Severity"],
        )
        for result in report.get("Results", [])
        if result["Class"] == "os-pkgs"
        for vuln in result.get("Vulnerabilities", [])
    )


def bolt_page_headers(bolt: bytes) -> list[tuple[int, int, int, int]]:
    """(id, flags, count, overflow) of each page, hopping over overflow pages."""
    headers = []
    offset = 0
    while offset < len(bolt):
        header = PAGE_HEADER.unpack_from(bolt, offset)
        headers.append(header)
        offset += (header[3] + 1) * PAGE_SIZE
    return headers


def bolt_page_starts(headers: list[tuple[int, int, int, int]]) -> list[int]:
    """Where each page must start, given the overflow pages of the ones before it."""
    starts = [0]
    for _, _, _, overflow in headers[:-1]:
        starts.append(starts[-1] + overflow + 1)
    return starts


def all_vulnerabilities(report: dict) -> list[dict]:
    return [v for result in report["Results"] for v in result.get("Vulnerabilities", [])]


@pytest.fixture(params=sorted(FIXTURE_PACKAGES))
def oci_image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, BuiltImage]:
    return request.param, build_oci_layout(tmp_path / "layout", request.param)


def test_scan_reports_exactly_the_fixture_findings(oci_image, trivy_cache_dir):
    architecture, image = oci_image

    report = scan_image_input(image.path, trivy_cache_dir)

    assert report["Metadata"]["OS"]["Family"] == "alpine"
    assert report["Metadata"]["OS"]["Name"] == "3.18.4"
    assert report["Metadata"]["ImageID"] == image.config_digest
    assert report["Metadata"]["DiffIDs"] == [image.diff_id]
    assert os_package_findings(report) == sorted(EXPECTED_FINDINGS[architecture])


def test_findings_carry_layer_status_and_vulnerability_details(oci_image, make_trivy_cache_dir):
    _, image = oci_image

    # A fresh cache: Layer.Digest comes from the cached analysis of the first scan of a DiffID.
    vulnerabilities = all_vulnerabilities(scan_image_input(image.path, make_trivy_cache_dir()))

    assert vulnerabilities
    for vuln in vulnerabilities:
        assert vuln["Layer"] == {"Digest": image.layer_digest, "DiffID": image.diff_id}
        assert vuln["Status"] == ("fixed" if vuln.get("FixedVersion") else "affected")
        assert vuln["DataSource"]["ID"] == "alpine"
        assert vuln["References"] == [f"https://security.example.test/{vuln['VulnerabilityID']}"]


def test_packages_without_advisory_are_detected_but_get_no_findings(oci_image, trivy_cache_dir):
    architecture, image = oci_image

    # --list-all-pkgs proves Trivy saw the package, so "no findings" is not vacuous.
    report = scan_image_input(image.path, trivy_cache_dir, "--list-all-pkgs")

    detected = {
        (package["Name"], package["Version"], package.get("SrcName"))
        for result in report["Results"]
        for package in result.get("Packages", [])
    }
    reported = {vuln["PkgName"] for vuln in all_vulnerabilities(report)}
    assert detected == set(FIXTURE_PACKAGES[architecture])
    assert reported.isdisjoint(PACKAGES_WITHOUT_ADVISORY)


def test_docker_archive_layers_have_diff_id_but_no_digest(tmp_path, make_trivy_cache_dir):
    # A fresh cache: the shared one may remember the gzip digest from an OCI layout scan.
    image = build_docker_archive(tmp_path / "image.tar", "amd64")

    report = scan_image_input(image.path, make_trivy_cache_dir())

    assert os_package_findings(report) == sorted(EXPECTED_FINDINGS["amd64"])
    layers = [vuln["Layer"] for vuln in all_vulnerabilities(report)]
    assert layers == [{"DiffID": image.diff_id}] * len(EXPECTED_FINDINGS["amd64"])


def test_newer_db_adds_its_findings_and_reports_its_date(tmp_path, make_trivy_cache_dir):
    updated_at = DEFAULT_UPDATED_AT + timedelta(days=30)
    cache_dir = make_trivy_cache_dir(FIXTURE_ADVISORIES + (NEWER_DB_ADVISORY,), updated_at)
    image = build_oci_layout(tmp_path / "layout", "amd64")

    report = scan_image_input(image.path, cache_dir)

    assert trivy_db_info(cache_dir)["UpdatedAt"] == "2025-02-14T06:00:00Z"
    expected = EXPECTED_FINDINGS["amd64"] + NEWER_DB_FINDINGS["amd64"]
    assert os_package_findings(report) == sorted(expected)


def test_large_db_with_branch_and_overflow_pages_is_read(tmp_path, make_trivy_cache_dir):
    # 800 zlib advisories fixed long ago spread the buckets over branch pages; one huge title
    # needs overflow pages. Trivy must still find the fixture ones among them.
    filler = tuple(
        FixtureAdvisory(f"CVE-2098-{n:05d}", "zlib", "1.0.0-r0", "LOW", f"zlib: filler {n}")
        for n in range(800)
    )
    huge = replace(FIXTURE_ADVISORIES[1], title="zlib: " + "x" * 3 * PAGE_SIZE)
    advisories = (*FIXTURE_ADVISORIES[:1], huge, *FIXTURE_ADVISORIES[2:], *filler)
    cache_dir = make_trivy_cache_dir(advisories)
    headers = bolt_page_headers((cache_dir / "db" / "trivy.db").read_bytes())
    assert [pgid for pgid, _, _, _ in headers] == bolt_page_starts(headers)
    assert any(flags == BRANCH_PAGE for _, flags, _, _ in headers)
    assert any(overflow > 0 for _, _, _, overflow in headers)
    image = build_oci_layout(tmp_path / "layout", "amd64")

    report = scan_image_input(image.path, cache_dir)

    assert os_package_findings(report) == sorted(EXPECTED_FINDINGS["amd64"])
    zlib_titles = [v["Title"] for v in all_vulnerabilities(report) if v["PkgName"] == "zlib"]
    assert zlib_titles == [huge.title]


def test_meta_pages_carry_fnv1a_checksums():
    bolt = build_bolt_file({"bucket": {"key": b"value"}})

    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector
    for pgid in (0, 1):
        meta = bolt[pgid * PAGE_SIZE + PAGE_HEADER.size :]
        magic, version, page_size = struct.unpack_from("<III", meta)
        assert (magic, version, page_size) == (MAGIC, FORMAT_VERSION, PAGE_SIZE)
        assert struct.unpack_from("<Q", meta, 56)[0] == fnv1a_64(meta[:56])
    assert len(bolt) % PAGE_SIZE == 0
