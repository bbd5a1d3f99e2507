"""pytest fixtures for real registries: load with `pytest_plugins = [__name__ of this module]`.

Session registries are shared by many tests: give each test its own repository (`repo_name`)
and keep destructive work (garbage collection, catalog counts, restarts) on `fresh_registry`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fault_proxy import FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tls import make_certificates
from tests.support.token_server import TokenServer

HTPASSWD_USERNAME = "alice"
HTPASSWD_PASSWORD = "alice-registry-secret"
TOKEN_USERNAME = "bob"
TOKEN_PASSWORD = "bob-token-secret"
SKOPEO_TIMEOUT_SECONDS = 60


@contextlib.contextmanager
def running_token_registry(
    workdir: Path, anonymous_actions: tuple[str, ...] = (), **registry_options
) -> Iterator[RegistryServer]:
    """A registry with `auth: token`, its token server as `.token_server`, both stopped after.

    `anonymous_actions=("pull",)` makes it behave like a public registry for anonymous users.
    """
    tokens = TokenServer(
        workdir / "token",
        username=TOKEN_USERNAME,
        password=TOKEN_PASSWORD,
        anonymous_actions=anonymous_actions,
    )
    with tokens:
        server = RegistryServer(
            workdir / "registry", token_auth=tokens.registry_auth_config(), **registry_options
        )
        server.username, server.password = tokens.username, tokens.password
        server.token_server = tokens
        with server:
            yield server


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator[RegistryServer]:
    """An open registry with delete enabled, shared by the whole session."""
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def htpasswd_registry(tmp_path_factory) -> Iterator[RegistryServer]:
    """A registry with Basic auth; `.username` / `.password` are the only valid credentials."""
    workdir = tmp_path_factory.mktemp("htpasswd-registry")
    with RegistryServer(workdir, htpasswd=(HTPASSWD_USERNAME, HTPASSWD_PASSWORD)) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory) -> Iterator[RegistryServer]:
    """A registry with bearer-token auth; `.token_server` issues tokens for `.username`."""
    with running_token_registry(tmp_path_factory.mktemp("token-registry")) as server:
        yield server


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory) -> Iterator[RegistryServer]:
    """An open registry with delete enabled, over HTTPS with a certificate of a test CA.

    `.url` is https://127.0.0.1:PORT; `.ca_pem` is the CA as text (a registry's `ca_bundle`),
    `.ca_path` the same as a file (`verify=` for requests).
    """
    workdir = tmp_path_factory.mktemp("tls-registry")
    certificates = make_certificates(workdir / "certificates")
    with RegistryServer(workdir / "registry", tls=certificates) as server:
        yield server


@pytest.fixture
def fresh_registry(tmp_path) -> Iterator[RegistryServer]:
    """A registry of this test's own: empty catalog, free to garbage-collect and restart."""
    with RegistryServer(tmp_path / "fresh-registry") as server:
        yield server


@pytest.fixture
def registry_factory(tmp_path) -> Iterator[Callable[..., RegistryServer]]:
    """`registry_factory(delete_enabled=False, catalog_maxentries=…)`: started, stopped after."""
    servers: list[RegistryServer] = []

    def make(**options) -> RegistryServer:
        server = RegistryServer(tmp_path / f"registry-{len(servers)}", **options)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fault_proxy_factory() -> Iterator[Callable[[RegistryServer | str], FaultProxy]]:
    """`fault_proxy_factory(registry_or_url)`: a started proxy in front of it, stopped after."""
    proxies: list[FaultProxy] = []

    def make(upstream: RegistryServer | str) -> FaultProxy:
        proxy = FaultProxy(upstream if isinstance(upstream, str) else upstream.url)
        proxies.append(proxy)
        return proxy.start()

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def fault_proxy(fault_proxy_factory, registry) -> FaultProxy:
    """A fault proxy in front of the session `registry`, no faults switched on."""
    return fault_proxy_factory(registry)


def repository_name_for(nodeid: str, name: str) -> str:
    """A valid, unique repository name from a test's node id: `module/test-name-hash`."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"

    module = clean(Path(nodeid.split("::")[0]).stem)[:40]
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]  # noqa: S324  (not security)
    return f"{module}/{clean(name)[:60]}-{digest}"


@pytest.fixture
def repo_name(request) -> str:
    return repository_name_for(request.node.nodeid, request.node.name)


@pytest.fixture
def repo_name_factory(repo_name) -> Callable[[str | None], str]:
    """More repository names for one test: `repo_name_factory("extra")` or numbered."""
    numbers = itertools.count(1)

    def make(suffix: str | None = None) -> str:
        label = re.sub(r"[^a-z0-9]+", "-", suffix.lower()).strip("-") if suffix else None
        return f"{repo_name}-{label or next(numbers)}"

    return make


class SkopeoError(RuntimeError):
    def __init__(self, command: list[str], result: subprocess.CompletedProcess):
        self.command = command
        self.returncode = result.returncode
        self.stderr = result.stderr
        super().__init__(f"{' '.join(command)} exited {result.returncode}: {result.stderr}")


class Skopeo:
    """Runs the real skopeo against test registries (plain http, no ambient credentials)."""

    def __init__(self, workdir: Path):
        if shutil.which("skopeo") is None:
            raise RuntimeError("skopeo is not installed (Debian package)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        # An empty auth file of our own: credentials of the machine's user never leak in.
        self.authfile = self.workdir / "auth.json"
        self.authfile.write_text(json.dumps({"auths": {}}))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = ["skopeo", *args]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=SKOPEO_TIMEOUT_SECONDS,
            env={"HOME": str(self.workdir), "PATH": "/usr/bin:/bin"},
            check=False,
        )
        if check and result.returncode != 0:
            raise SkopeoError(command, result)
        return result

    def inspect(
        self,
        reference: str,
        *,
        raw: bool = False,
        config: bool = False,
        creds: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> dict:
        """`skopeo inspect docker://HOST/REPO:TAG` as JSON; `creds` is "user:password"."""
        args = ["inspect", "--tls-verify=false", "--authfile", str(self.authfile)]
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        if creds is not None:
            args += ["--creds", creds]
        target = reference if reference.startswith("docker://") else f"docker://{reference}"
        return json.loads(self.run(*args, *extra_args, target).stdout)

    def list_tags(self, repository_reference: str, *, creds: str | None = None) -> list[str]:
        args = ["list-tags", "--tls-verify=false", "--authfile", str(self.authfile)]
        if creds is not None:
            args += ["--creds", creds]
        target = (
            repository_reference
            if repository_reference.startswith("docker://")
            else f"docker://{repository_reference}"
        )
        return json.loads(self.run(*args, target).stdout)["Tags"]


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory) -> Skopeo:
    return Skopeo(tmp_path_factory.mktemp("skopeo"))
