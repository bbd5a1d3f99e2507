"""A real CNCF distribution registry (`docker-registry serve`) on a free loopback port.

The server gets its own storage directory and a config written here, so tests talk to the same
code production registries run, not to a mock. Stop it always (context manager or `.stop()`).
With `tls=` (see tests/support/tls.py) it serves HTTPS with a certificate of a test CA.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.tls import ServerCertificates

REGISTRY_BINARY = "docker-registry"
START_TIMEOUT_SECONDS = 15.0
INSTANCE_HEADER = "X-Regui-Test-Instance"


def free_port() -> int:
    """Ask the kernel for a free loopback port (closed again before the caller binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def htpasswd_line(username: str, password: str) -> str:
    """One bcrypt htpasswd line; distribution accepts only bcrypt hashes."""
    result = subprocess.run(
        ["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True
    )
    return result.stdout.strip() + "\n"


def notification_endpoint(url: str, headers: dict[str, str] | None = None) -> dict:
    """One `notifications.endpoints` entry: events POSTed to `url` with `headers`.

    Short timeout and backoff so a test sees retries quickly; distribution sends one envelope
    per event here (blob pushes included, with mediaType application/octet-stream).
    """
    return {
        "name": "regui-test",
        "url": url,
        "headers": {name: [value] for name, value in (headers or {}).items()},
        "timeout": "2s",
        "threshold": 3,
        "backoff": "1s",
    }


class PortTakenError(RuntimeError):
    """Another process bound the port between `free_port()` and the registry's start."""


@dataclass(frozen=True)
class TokenAuthConfig:
    """What distribution's `auth: token` section needs to trust a token server."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


class RegistryServer:
    """Runs `docker-registry serve` with a generated config until `stop()`.

    `start()` after `stop()` restarts on the same port and storage, which garbage-collect
    tests need (collection runs with the registry stopped, as distribution asks).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        delete_enabled: bool = True,
        htpasswd: tuple[str, str] | None = None,
        token_auth: TokenAuthConfig | None = None,
        catalog_maxentries: int | None = None,
        notification_endpoints: list[dict] | None = None,
        read_only: bool = False,
        log_level: str = "warn",
        tls: ServerCertificates | None = None,
    ):
        if htpasswd and token_auth:
            raise ValueError("choose htpasswd or token auth, not both")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir = self.workdir / "storage"
        self.storage_dir.mkdir(exist_ok=True)
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.port = free_port()
        self.delete_enabled = delete_enabled
        self.token_auth = token_auth
        self.catalog_maxentries = catalog_maxentries
        self.notification_endpoints = notification_endpoints or []
        self.read_only = read_only
        self.log_level = log_level
        self.tls = tls
        self.username, self.password = htpasswd or (None, None)
        self._http_secret = secrets.token_hex(16)
        self._instance_id = secrets.token_hex(8)
        self._process: subprocess.Popen | None = None
        self._started_once = False
        self._log_file = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_path(self) -> Path | None:
        """The CA file that verifies this server's certificate (None without TLS)."""
        return self.tls.ca_path if self.tls else None

    @property
    def ca_pem(self) -> str:
        """That CA as PEM text, as an admin would paste it into a registry's CA bundle."""
        return self.tls.ca_pem if self.tls else ""

    @property
    def auth_kind(self) -> str:
        if self.token_auth:
            return "token"
        return "basic" if self.username else "none"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- config ----------------------------------------------------------------------------

    def config(self) -> dict:
        """The distribution config as a dict (written as JSON, which YAML parsers accept)."""
        config = {
            "version": "0.1",
            "log": {
                "level": self.log_level,
                "formatter": "text",
                "accesslog": {"disabled": True},
            },
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": self.delete_enabled},
                "maintenance": {
                    # Upload purging runs in the background and would race with tests.
                    "uploadpurging": {"enabled": False},
                    "readonly": {"enabled": self.read_only},
                },
            },
            "http": {
                "addr": self.host,
                "secret": self._http_secret,
                # Lets the start-up check tell this server from anything else on the port.
                "headers": {INSTANCE_HEADER: [self._instance_id]},
            },
        }
        if self.tls:
            config["http"]["tls"] = {
                "certificate": str(self.tls.certificate_path),
                "key": str(self.tls.key_path),
            }
        if self.catalog_maxentries:
            config["catalog"] = {"maxentries": self.catalog_maxentries}
        if self.username:
            htpasswd_path = self.workdir / "htpasswd"
            htpasswd_path.write_text(htpasswd_line(self.username, self.password))
            config["auth"] = {"htpasswd": {"realm": "regui-test", "path": str(htpasswd_path)}}
        if self.token_auth:
            config["auth"] = {
                "token": {
                    "realm": self.token_auth.realm,
                    "service": self.token_auth.service,
                    "issuer": self.token_auth.issuer,
                    "rootcertbundle": str(self.token_auth.rootcertbundle),
                }
            }
        if self.notification_endpoints:
            config["notifications"] = {"endpoints": self.notification_endpoints}
        return config

    def write_config(self) -> None:
        self.config_path.write_text(json.dumps(self.config(), indent=2))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> RegistryServer:
        if self.running:
            return self
        if shutil.which(REGISTRY_BINARY) is None:
            raise RuntimeError(f"{REGISTRY_BINARY} is not installed (Debian package)")
        # The free port may be taken between probing and binding: try another, but only on
        # the first start (a restart must keep its address).
        attempts = 1 if self._started_once else 3
        for attempt in range(attempts):
            try:
                self._spawn()
                break
            except PortTakenError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
        self._started_once = True
        return self

    def _spawn(self) -> None:
        self.write_config()
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.config_path)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_environment_without_registry_overrides(),
        )
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        verify = str(self.ca_path) if self.tls else True
        last_error = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log_tail()
                if "address already in use" in log[-500:]:
                    raise PortTakenError(log)
                raise RuntimeError(f"registry exited with {self._process.returncode}: {log}")
            try:
                # Any answer of ours (200 open, 401 with auth) means the server is up.
                answer = requests.get(f"{self.url}/v2/", timeout=1, verify=verify)
                if answer.headers.get(INSTANCE_HEADER) == self._instance_id:
                    return
            except requests.ConnectionError as error:
                # Refused until the server listens; a TLS failure (an SSLError) would repeat,
                # so keep it for the message rather than wait silently.
                last_error = str(error) if isinstance(error, requests.exceptions.SSLError) else ""
            time.sleep(0.05)
        detail = f"{last_error}\n" if last_error else ""
        raise RuntimeError(f"registry did not answer on {self.url}: {detail}{self.log_tail()}")

    # -- maintenance -----------------------------------------------------------------------

    def garbage_collect(
        self, *, delete_untagged: bool = False, dry_run: bool = False, restart: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `docker-registry garbage-collect` with the server stopped, then restart it.

        This is the procedure a production registry needs: registry:2's stock config caches
        blob descriptors in memory, and a running registry would claim collected blobs exist.
        This config sets no cache, so here a collected blob answers 404 even before the restart.
        """
        was_running = self.running
        self.stop()
        command = [REGISTRY_BINARY, "garbage-collect", str(self.config_path)]
        if delete_untagged:
            command.append("--delete-untagged")
        if dry_run:
            command.append("--dry-run")
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=_environment_without_registry_overrides(),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"garbage-collect failed: {result.stdout}{result.stderr}")
        if was_running and restart:
            self.start()
        return result

    def storage_bytes(self) -> int:
        """Bytes of blob data on disk (what garbage collection gives back)."""
        blobs = self.storage_dir / "docker/registry/v2/blobs"
        return sum(path.stat().st_size for path in blobs.rglob("data") if path.is_file())

    def blob_digests_on_disk(self) -> set[str]:
        blobs = self.storage_dir / "docker/registry/v2/blobs"
        return {f"sha256:{path.parent.name}" for path in blobs.rglob("data") if path.is_file()}

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def _environment_without_registry_overrides() -> dict[str, str]:
    # REGISTRY_* variables override the config file; a stray one would change the server.
    return {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
