"""A small Trivy vulnerability DB for offline scans of the fixture Alpine images.

Layout read by Trivy 0.59.1 (``CACHE/db/trivy.db``, BoltDB, JSON values):

- ``"alpine 3.18"`` → sub-bucket per apk origin (``o:``) → CVE id → ``{"FixedVersion": …}``
  (an empty fixed version means "no fix yet": Trivy reports it for every installed version);
- ``"vulnerability"`` → CVE id → title, description, severity, CVSS, references, dates;
- ``"data-source"`` → ``"alpine 3.18"`` → ``{"ID": "alpine", "Name": …, "URL": …}``.

``CACHE/db/metadata.json`` must say ``"Version": 2`` (the schema Trivy 0.59.1 expects); with
``--skip-db-update`` Trivy refuses to start without it.

Fixture images (see FIXTURE_PACKAGES) and what a scan of each must report (EXPECTED_FINDINGS):

amd64 (apk packages → findings)
  libcrypto3 3.1.0-r0 (openssl)   CVE-2099-0001 CRITICAL fixed 3.1.4-r0
  libssl3 3.1.0-r0 (openssl)      CVE-2099-0001 CRITICAL fixed 3.1.4-r0  (same CVE, 2nd package)
  zlib 1.2.13-r0                  CVE-2099-0002 HIGH     fixed 1.2.13-r1
                                  (CVE-2099-0007 is fixed in 1.2.12-r0: not reported)
  musl 1.2.4-r0                   CVE-2099-0003 MEDIUM   fixed 1.2.4-r1
  busybox 1.36.0-r0               CVE-2099-0004 LOW      fixed 1.36.1-r0
                                  CVE-2099-0005 UNKNOWN  no fix (Status "affected")
  alpine-baselayout 3.4.3-r1      nothing (no advisory at all)

arm64
  zlib 1.2.13-r0                  CVE-2099-0002 HIGH     fixed 1.2.13-r1
  busybox 1.36.1-r0               CVE-2099-0005 UNKNOWN  no fix (CVE-2099-0004 already fixed)
  curl 8.4.0-r0                   CVE-2099-0006 MEDIUM   fixed 8.5.0-r0
  musl 1.2.4-r2, libcrypto3 3.1.4-r0: already fixed; alpine-baselayout: no advisory

NEWER_DB_ADVISORY (CVE-2099-0100 HIGH on musl, fixed 1.2.5-r0) is not in the default DB;
write a DB with ``advisories=FIXTURE_ADVISORIES + (NEWER_DB_ADVISORY,)`` and a later
``updated_at`` to model "a newer DB finds more": NEWER_DB_FINDINGS lists what it adds.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.alpine_rootfs import ALPINE_RELEASE
from tests.support.boltdb import write_bolt_file

SCHEMA_VERSION = 2
ALPINE_BUCKET = "alpine " + ".".join(ALPINE_RELEASE.split(".")[:2])  # "alpine 3.18"
ALPINE_DATA_SOURCE = {
    "ID": "alpine",
    "Name": "Alpine Secdb",
    "URL": "https://secdb.alpinelinux.org/",
}
DEFAULT_UPDATED_AT = datetime(2025, 1, 15, 6, 0, tzinfo=UTC)

# Trivy's severity numbers (VendorSeverity values).
SEVERITY_LEVELS = {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
_CVSS_BY_SEVERITY = {
    "CRITICAL": ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    "HIGH": ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
    "MEDIUM": ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 5.9),
    "LOW": ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N", 2.5),
}


@dataclass(frozen=True)
class FixtureAdvisory:
    vulnerability_id: str
    source_package: str  # the apk origin (``o:``), the sub-bucket name
    fixed_version: str  # "" when no fix exists yet
    severity: str  # UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL
    title: str
    published_date: str = "2024-03-01T12:00:00Z"


@dataclass(frozen=True, order=True)
class ExpectedFinding:
    vulnerability_id: str
    pkg_name: str
    installed_version: str
    fixed_version: str
    severity: str


FIXTURE_ADVISORIES: tuple[FixtureAdvisory, ...] = (
    FixtureAdvisory("CVE-2099-0001", "openssl", "3.1.4-r0", "CRITICAL", "openssl: fixture RCE"),
    FixtureAdvisory("CVE-2099-0002", "zlib", "1.2.13-r1", "HIGH", "zlib: fixture overflow"),
    FixtureAdvisory("CVE-2099-0003", "musl", "1.2.4-r1", "MEDIUM", "musl: fixture DoS"),
    FixtureAdvisory("CVE-2099-0004", "busybox", "1.36.1-r0", "LOW", "busybox: fixture leak"),
    FixtureAdvisory("CVE-2099-0005", "busybox", "", "UNKNOWN", "busybox: fixture unfixed"),
    FixtureAdvisory("CVE-2099-0006", "curl", "8.5.0-r0", "MEDIUM", "curl: fixture header bug"),
    FixtureAdvisory("CVE-2099-0007", "zlib", "1.2.12-r0", "HIGH", "zlib: fixture, fixed long ago"),
)
NEWER_DB_ADVISORY = FixtureAdvisory(
    "CVE-2099-0100", "musl", "1.2.5-r0", "HIGH", "musl: fixture found later", "2025-02-01T00:00:00Z"
)

# (name, version, origin) per image platform architecture.
FIXTURE_PACKAGES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "amd64": (
        ("alpine-baselayout", "3.4.3-r1", "alpine-baselayout"),
        ("busybox", "1.36.0-r0", "busybox"),
        ("libcrypto3", "3.1.0-r0", "openssl"),
        ("libssl3", "3.1.0-r0", "openssl"),
        ("musl", "1.2.4-r0", "musl"),
        ("zlib", "1.2.13-r0", "zlib"),
    ),
    "arm64": (
        ("alpine-baselayout", "3.4.3-r1", "alpine-baselayout"),
        ("busybox", "1.36.1-r0", "busybox"),
        ("curl", "8.4.0-r0", "curl"),
        ("libcrypto3", "3.1.4-r0", "openssl"),
        ("musl", "1.2.4-r2", "musl"),
        ("zlib", "1.2.13-r0", "zlib"),
    ),
}
PACKAGES_WITHOUT_ADVISORY = frozenset({"alpine-baselayout"})

EXPECTED_FINDINGS: dict[str, tuple[ExpectedFinding, ...]] = {
    "amd64": (
        ExpectedFinding("CVE-2099-0001", "libcrypto3", "3.1.0-r0", "3.1.4-r0", "CRITICAL"),
        ExpectedFinding("CVE-2099-0001", "libssl3", "3.1.0-r0", "3.1.4-r0", "CRITICAL"),
        ExpectedFinding("CVE-2099-0002", "zlib", "1.2.13-r0", "1.2.13-r1", "HIGH"),
        ExpectedFinding("CVE-2099-0003", "musl", "1.2.4-r0", "1.2.4-r1", "MEDIUM"),
        ExpectedFinding("CVE-2099-0004", "busybox", "1.36.0-r0", "1.36.1-r0", "LOW"),
        ExpectedFinding("CVE-2099-0005", "busybox", "1.36.0-r0", "", "UNKNOWN"),
    ),
    "arm64": (
        ExpectedFinding("CVE-2099-0002", "zlib", "1.2.13-r0", "1.2.13-r1", "HIGH"),
        ExpectedFinding("CVE-2099-0005", "busybox", "1.36.1-r0", "", "UNKNOWN"),
        ExpectedFinding("CVE-2099-0006", "curl", "8.4.0-r0", "8.5.0-r0", "MEDIUM"),
    ),
}
NEWER_DB_FINDINGS: dict[str, tuple[ExpectedFinding, ...]] = {
    "amd64": (ExpectedFinding("CVE-2099-0100", "musl", "1.2.4-r0", "1.2.5-r0", "HIGH"),),
    "arm64": (ExpectedFinding("CVE-2099-0100", "musl", "1.2.4-r2", "1.2.5-r0", "HIGH"),),
}


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vulnerability_detail(advisory: FixtureAdvisory) -> dict:
    """The ``vulnerability`` bucket value; UNKNOWN leaves out vendor severity and CVSS."""
    vuln_id = advisory.vulnerability_id
    detail = {
        "Title": advisory.title,
        "Description": f"Fixture advisory {vuln_id} for the {advisory.source_package} package.",
        "Severity": advisory.severity,
        "References": [f"https://security.example.test/{vuln_id}"],
        "PublishedDate": advisory.published_date,
        "LastModifiedDate": advisory.published_date,
    }
    if advisory.severity in _CVSS_BY_SEVERITY:
        vector, score = _CVSS_BY_SEVERITY[advisory.severity]
        detail["VendorSeverity"] = {"nvd": SEVERITY_LEVELS[advisory.severity]}
        detail["CVSS"] = {"nvd": {"V3Vector": vector, "V3Score": score}}
    return detail


def trivy_db_tree(advisories: Iterable[FixtureAdvisory] = FIXTURE_ADVISORIES) -> dict:
    """The nested bucket dict of a Trivy DB holding ``advisories``."""
    by_package: dict[str, dict[str, bytes]] = {}
    details: dict[str, bytes] = {}
    for advisory in advisories:
        by_package.setdefault(advisory.source_package, {})[advisory.vulnerability_id] = _json_bytes(
            {"FixedVersion": advisory.fixed_version}
        )
        details[advisory.vulnerability_id] = _json_bytes(vulnerability_detail(advisory))
    return {
        ALPINE_BUCKET: by_package,
        "vulnerability": details,
        "data-source": {ALPINE_BUCKET: _json_bytes(ALPINE_DATA_SOURCE)},
    }


def db_metadata(updated_at: datetime, downloaded_at: datetime | None = None) -> dict:
    return {
        "Version": SCHEMA_VERSION,
        "NextUpdate": _rfc3339(updated_at + timedelta(hours=24)),
        "UpdatedAt": _rfc3339(updated_at),
        "DownloadedAt": _rfc3339(downloaded_at or updated_at),
    }


def _write_atomically(path: Path, content: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as temp_file:
        temp_file.write(content)
    os.replace(temp_name, path)


def write_trivy_db(
    cache_dir: str | os.PathLike[str],
    *,
    advisories: Iterable[FixtureAdvisory] = FIXTURE_ADVISORIES,
    updated_at: datetime = DEFAULT_UPDATED_AT,
    downloaded_at: datetime | None = None,
) -> Path:
    """Writes ``cache_dir/db/trivy.db`` and ``metadata.json``; returns ``cache_dir``.

    Pass the result to Trivy as ``--cache-dir`` together with ``--skip-db-update``.
    """
    db_dir = Path(cache_dir) / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    write_bolt_file(db_dir / "trivy.db", trivy_db_tree(advisories))
    metadata = db_metadata(updated_at, downloaded_at)
    _write_atomically(db_dir / "metadata.json", json.dumps(metadata, indent=2).encode())
    return Path(cache_dir)
