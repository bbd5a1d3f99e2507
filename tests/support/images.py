"""Real container images built in memory and pushed over the registry HTTP API (no Docker).

Everything is deterministic (fixed tar metadata, gzip mtime 0, compact JSON), so the same
arguments always give the same digests. The Alpine-like layer carries what scanners read
(`etc/os-release`, `etc/alpine-release`, `lib/apk/db/installed`), so Trivy finds packages.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO_LAYER = "application/vnd.in-toto+json"
# Without all four, distribution answers 404 for OCI and converts Docker v2 to schema1.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"

DEFAULT_CREATED = dt.datetime(2023, 10, 2, 12, 0, 0, tzinfo=dt.UTC)
FILE_MTIME = 1696204800  # 2023-10-02: fixed so layer digests repeat
DEFAULT_ALPINE_VERSION = "3.18.4"
HTTP_TIMEOUT = 30

# Alpine's names for Go architectures, as apk writes them in `A:`.
APK_ARCH = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "armv7",
    "386": "x86",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


# -- packages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApkPackage:
    """One installed apk package; `origin` is the source package scanners match on."""

    name: str
    version: str
    origin: str | None = None
    license: str = "MIT"
    description: str = ""
    depends: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.origin or self.name


PackageSpec = ApkPackage | tuple[str, str] | tuple[str, str, str]

# Alpine 3.18.4's base image, with real versions of the time.
DEFAULT_PACKAGES: tuple[ApkPackage, ...] = (
    ApkPackage("alpine-baselayout", "3.4.3-r1", license="GPL-2.0-only"),
    ApkPackage("alpine-baselayout-data", "3.4.3-r1", "alpine-baselayout", "GPL-2.0-only"),
    ApkPackage("alpine-keys", "2.4-r1"),
    ApkPackage("apk-tools", "2.14.0-r2", license="GPL-2.0-only"),
    ApkPackage("busybox", "1.36.1-r2", license="GPL-2.0-only"),
    ApkPackage("busybox-binsh", "1.36.1-r2", "busybox", "GPL-2.0-only"),
    ApkPackage("ca-certificates-bundle", "20230506-r0", "ca-certificates", "MPL-2.0 AND MIT"),
    ApkPackage("libc-utils", "0.7.2-r5", license="BSD-2-Clause AND BSD-3-Clause"),
    ApkPackage("libcrypto3", "3.1.3-r0", "openssl", "Apache-2.0"),
    ApkPackage("libssl3", "3.1.3-r0", "openssl", "Apache-2.0"),
    ApkPackage("musl", "1.2.4-r2"),
    ApkPackage("musl-utils", "1.2.4-r2", "musl", "MIT AND BSD-2-Clause AND GPL-2.0-or-later"),
    ApkPackage("scanelf", "1.3.7-r1", "pax-utils", "GPL-2.0-only"),
    ApkPackage("ssl_client", "1.36.1-r2", "busybox", "GPL-2.0-only"),
    ApkPackage("zlib", "1.2.13-r1", license="Zlib"),
)

# The arm64 child of `build_platform_index` differs, so scanners find different things:
# an older openssl and curl on top.
ARM64_PACKAGES: tuple[ApkPackage, ...] = (
    *(p for p in DEFAULT_PACKAGES if p.source != "openssl"),
    ApkPackage("libcrypto3", "3.1.1-r1", "openssl", "Apache-2.0"),
    ApkPackage("libssl3", "3.1.1-r1", "openssl", "Apache-2.0"),
    ApkPackage("curl", "8.2.1-r0", license="curl"),
    ApkPackage("libcurl", "8.2.1-r0", "curl", "curl"),
)


def as_apk_package(spec: PackageSpec) -> ApkPackage:
    if isinstance(spec, ApkPackage):
        return spec
    return ApkPackage(*spec)


def _apk_checksum(data: bytes) -> str:
    """apk's `Q1` + base64(sha1) checksum notation."""
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")  # noqa: S324


def _package_doc_path(package: ApkPackage) -> tuple[str, str]:
    return f"usr/share/doc/{package.name}", "VERSION"


def _package_doc_content(package: ApkPackage) -> bytes:
    return f"{package.name} {package.version}\n".encode()


def apk_installed_db(packages: Iterable[ApkPackage], apk_arch: str) -> bytes:
    """`lib/apk/db/installed` as apk writes it: one stanza per package, blank-line separated."""
    stanzas = []
    for package in packages:
        directory, filename = _package_doc_path(package)
        lines = [
            f"C:{_apk_checksum(f'{package.name}-{package.version}'.encode())}",
            f"P:{package.name}",
            f"V:{package.version}",
            f"A:{apk_arch}",
            "S:4096",
            "I:8192",
            f"T:{package.description or package.name + ' package'}",
            f"U:https://pkgs.alpinelinux.org/package/{package.name}",
            f"L:{package.license}",
            f"o:{package.source}",
            "m:Natanael Copa <ncopa@alpinelinux.org>",
            f"t:{FILE_MTIME}",
            f"c:{hashlib.sha1(package.source.encode()).hexdigest()}",  # noqa: S324
        ]
        if package.depends:
            lines.append("D:" + " ".join(package.depends))
        lines += [
            f"F:{directory}",
            f"R:{filename}",
            "a:0:0:644",
            f"Z:{_apk_checksum(_package_doc_content(package))}",
        ]
        stanzas.append("\n".join(lines) + "\n")
    return ("\n".join(stanzas) + "\n").encode()


def alpine_files(
    packages: Iterable[PackageSpec], arch: str, alpine_version: str = DEFAULT_ALPINE_VERSION
) -> dict[str, bytes]:
    """The files of an Alpine-like root filesystem that scanners read."""
    packages = [as_apk_package(spec) for spec in packages]
    minor = ".".join(alpine_version.split(".")[:2])
    os_release = (
        'NAME="Alpine Linux"\n'
        "ID=alpine\n"
        f"VERSION_ID={alpine_version}\n"
        f'PRETTY_NAME="Alpine Linux v{minor}"\n'
        'HOME_URL="https://alpinelinux.org/"\n'
        'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n'
    )
    files = {
        "etc/os-release": os_release.encode(),
        "etc/alpine-release": f"{alpine_version}\n".encode(),
        "etc/apk/repositories": (
            f"https://dl-cdn.alpinelinux.org/alpine/v{minor}/main\n"
            f"https://dl-cdn.alpinelinux.org/alpine/v{minor}/community\n"
        ).encode(),
        "etc/apk/arch": f"{APK_ARCH.get(arch, arch)}\n".encode(),
        "lib/apk/db/installed": apk_installed_db(packages, APK_ARCH.get(arch, arch)),
    }
    for package in packages:
        directory, filename = _package_doc_path(package)
        files[f"{directory}/{filename}"] = _package_doc_content(package)
    return files


# -- blobs and layers --------------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """Bytes as stored in the registry; `diff_id` is the uncompressed digest for layers."""

    data: bytes = field(repr=False)
    digest: str
    diff_id: str | None = None

    @classmethod
    def of(cls, data: bytes, diff_id: str | None = None) -> Blob:
        return cls(data=data, digest=sha256_digest(data), diff_id=diff_id)

    @property
    def size(self) -> int:
        return len(self.data)


def _tar_info(name: str, *, directory: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = FILE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_layer(files: Mapping[str, bytes | str]) -> Blob:
    """A gzip'd tar layer holding `files` (path -> content), parents first, sorted."""
    paths = {path.strip("/"): content for path, content in files.items()}
    directories = {
        "/".join(path.split("/")[:depth])
        for path in paths
        for depth in range(1, path.count("/") + 1)
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(directories | set(paths)):
            if name in directories:
                tar.addfile(_tar_info(name + "/", directory=True))
                continue
            content = paths[name]
            data = content.encode() if isinstance(content, str) else content
            tar.addfile(_tar_info(name, directory=False, size=len(data)), io.BytesIO(data))
    uncompressed = raw.getvalue()
    return Blob.of(gzip.compress(uncompressed, mtime=0), diff_id=sha256_digest(uncompressed))


def alpine_layer(
    packages: Iterable[PackageSpec] | None = None,
    arch: str = "amd64",
    alpine_version: str = DEFAULT_ALPINE_VERSION,
) -> Blob:
    return build_layer(
        alpine_files(DEFAULT_PACKAGES if packages is None else packages, arch, alpine_version)
    )


# -- images ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """A single-platform image: its manifest bytes and every blob it references."""

    manifest: bytes = field(repr=False)
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]
    architecture: str
    os: str
    variant: str | None = None
    created: dt.datetime | None = None
    packages: tuple[ApkPackage, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        """Compressed bytes: sum of layer sizes plus config size (what registries store)."""
        return sum(layer.size for layer in self.layers) + self.config.size

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)

    @property
    def platform(self) -> dict:
        platform = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            platform["variant"] = self.variant
        return platform

    @property
    def manifest_json(self) -> dict:
        return json.loads(self.manifest)

    @property
    def config_json(self) -> dict:
        return json.loads(self.config.data)


def _compact_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _media_types(media: str) -> tuple[str, str, str]:
    """(manifest, config, layer) media types for "oci" or "docker"."""
    if media == "oci":
        return OCI_MANIFEST, OCI_CONFIG, OCI_LAYER
    if media == "docker":
        return DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER
    raise ValueError(f"media must be 'oci' or 'docker', not {media!r}")


def _history(
    layers: Sequence[Blob],
    created: dt.datetime | None,
    container_config: dict,
) -> list[dict]:
    """Dockerfile-like history: one entry per layer, `empty_layer` for metadata steps."""
    steps: list[tuple[str, bool]] = [
        (f"/bin/sh -c #(nop) ADD file:{layers[0].diff_id.split(':')[1]} in / ", False),
        (f"/bin/sh -c #(nop)  CMD {json.dumps(['/bin/sh'])}", True),
    ]
    for name, value in sorted(container_config.get("Labels", {}).items()):
        steps.append((f"LABEL {name}={value}", True))
    for variable in container_config.get("Env", []):
        steps.append((f"ENV {variable}", True))
    steps += [(f"COPY layer-{number} / # buildkit", False) for number in range(1, len(layers))]
    for port in container_config.get("ExposedPorts", {}):
        steps.append((f"EXPOSE map[{port}:{{}}]", True))
    if container_config.get("WorkingDir"):
        steps.append((f"WORKDIR {container_config['WorkingDir']}", True))
    if container_config.get("User"):
        steps.append((f"USER {container_config['User']}", True))
    if container_config.get("Entrypoint"):
        steps.append((f"ENTRYPOINT {json.dumps(container_config['Entrypoint'])}", True))
    if container_config.get("Cmd"):
        steps.append((f"CMD {json.dumps(container_config['Cmd'])}", True))
    history = []
    for created_by, empty in steps:
        entry = {"created_by": created_by}
        if created is not None:
            entry = {"created": _rfc3339(created), **entry}
        if empty:
            entry["empty_layer"] = True
        else:
            entry["comment"] = "buildkit.dockerfile.v0"
        history.append(entry)
    return history


def image_from_layers(
    layers: Sequence[Blob],
    *,
    arch: str = "amd64",
    os_name: str = "linux",
    variant: str | None = None,
    created: dt.datetime | None = DEFAULT_CREATED,
    media: str = "oci",
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
    workdir: str = "/",
    user: str = "",
    exposed_ports: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    packages: Sequence[ApkPackage] = (),
) -> Image:
    """Config + manifest for existing layers; `created=None` leaves the date out."""
    manifest_type, config_type, layer_type = _media_types(media)
    variant = variant if variant is not None else DEFAULT_VARIANT.get(arch)
    container_config: dict = {"Env": list(env)}
    if entrypoint:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd:
        container_config["Cmd"] = list(cmd)
    container_config["WorkingDir"] = workdir
    container_config["User"] = user
    if exposed_ports:
        container_config["ExposedPorts"] = {port: {} for port in exposed_ports}
    if labels:
        container_config["Labels"] = dict(labels)
    config: dict = {}
    if created is not None:
        config["created"] = _rfc3339(created)
    config["architecture"] = arch
    if variant:
        config["variant"] = variant
    config["os"] = os_name
    config["config"] = container_config
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    config["history"] = _history(layers, created, container_config)
    config_blob = Blob.of(_compact_json(config))
    manifest: dict = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": [
            {"mediaType": layer_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    if annotations:
        if media != "oci":
            raise ValueError("Docker v2 manifests have no annotations")
        manifest["annotations"] = dict(annotations)
    return Image(
        manifest=_compact_json(manifest),
        media_type=manifest_type,
        config=config_blob,
        layers=tuple(layers),
        architecture=arch,
        os=os_name,
        variant=variant,
        created=created,
        packages=tuple(packages),
    )


def build_image(
    packages: Iterable[PackageSpec] | None = None,
    *,
    arch: str = "amd64",
    created: dt.datetime | None = DEFAULT_CREATED,
    media: str = "oci",
    alpine_version: str = DEFAULT_ALPINE_VERSION,
    extra_files: Mapping[str, bytes | str] | None = None,
    extra_layers: Sequence[Mapping[str, bytes | str]] = (),
    labels: Mapping[str, str] | None = None,
    **config_options,
) -> Image:
    """An Alpine-like image: the apk layer, then `extra_files` as one layer, then `extra_layers`.

    `config_options` go to `image_from_layers` (variant, env, cmd, entrypoint, workdir, user,
    exposed_ports, annotations, os_name).
    """
    package_list = tuple(
        as_apk_package(spec) for spec in (DEFAULT_PACKAGES if packages is None else packages)
    )
    layers = [alpine_layer(package_list, arch, alpine_version)]
    if extra_files:
        layers.append(build_layer(extra_files))
    layers += [build_layer(files) for files in extra_layers]
    return image_from_layers(
        layers,
        arch=arch,
        created=created,
        media=media,
        labels=labels,
        packages=package_list,
        **config_options,
    )


def build_attestation(subject: Image) -> Image:
    """A BuildKit-style attestation manifest (SPDX in-toto statement) for `subject`."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [
            {
                "name": f"pkg:docker/regui-test@{subject.digest}",
                "digest": {"sha256": subject.digest.split(":")[1]},
            }
        ],
        "predicate": {
            "spdxVersion": "SPDX-2.3",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "sbom",
            "packages": [
                {"name": p.name, "versionInfo": p.version, "SPDXID": f"SPDXRef-{p.name}"}
                for p in subject.packages
            ],
        },
    }
    statement_blob = Blob.of(_compact_json(statement))
    # Not compressed, so the diff id is the blob digest itself.
    statement_blob = Blob(statement_blob.data, statement_blob.digest, statement_blob.digest)
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [statement_blob.digest]},
    }
    config_blob = Blob.of(_compact_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
        "layers": [
            {
                "mediaType": IN_TOTO_LAYER,
                "digest": statement_blob.digest,
                "size": statement_blob.size,
                "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
            }
        ],
    }
    return Image(
        manifest=_compact_json(manifest),
        media_type=OCI_MANIFEST,
        config=config_blob,
        layers=(statement_blob,),
        architecture="unknown",
        os="unknown",
    )


@dataclass(frozen=True)
class Index:
    """A multi-platform index: platform children plus (optionally) attestation children."""

    manifest: bytes = field(repr=False)
    media_type: str
    children: tuple[Image, ...]
    attestations: tuple[Image, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        """Sum over the distinct blobs of the platform children (attestations excluded)."""
        distinct = {blob.digest: blob.size for child in self.children for blob in child.blobs}
        return sum(distinct.values())

    @property
    def manifests(self) -> tuple[Image, ...]:
        """Every child manifest, in push order."""
        return (*self.children, *self.attestations)

    @property
    def manifest_json(self) -> dict:
        return json.loads(self.manifest)


def build_index(
    children: Sequence[Image],
    *,
    attestation: bool = True,
    media: str = "oci",
    annotations: Mapping[str, str] | None = None,
) -> Index:
    """An OCI index (or Docker manifest list) over `children`.

    With `attestation`, each platform child gets a BuildKit-style attestation entry
    (platform unknown/unknown, `vnd.docker.reference.*` annotations).
    """
    if media == "docker" and attestation:
        raise ValueError("attestation manifests need an OCI index")
    entries = [
        {
            "mediaType": child.media_type,
            "digest": child.digest,
            "size": len(child.manifest),
            "platform": child.platform,
        }
        for child in children
    ]
    attestations = tuple(build_attestation(child) for child in children) if attestation else ()
    for subject, statement in zip(children, attestations, strict=False):
        entries.append(
            {
                "mediaType": statement.media_type,
                "digest": statement.digest,
                "size": len(statement.manifest),
                "annotations": {
                    ATTESTATION_DIGEST_ANNOTATION: subject.digest,
                    ATTESTATION_TYPE_ANNOTATION: ATTESTATION_MANIFEST,
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
        )
    index_type = OCI_INDEX if media == "oci" else DOCKER_MANIFEST_LIST
    document: dict = {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}
    if annotations:
        document["annotations"] = dict(annotations)
    return Index(
        manifest=_compact_json(document),
        media_type=index_type,
        children=tuple(children),
        attestations=attestations,
    )


def build_platform_index(
    *,
    created: dt.datetime | None = DEFAULT_CREATED,
    amd64_packages: Iterable[PackageSpec] = DEFAULT_PACKAGES,
    arm64_packages: Iterable[PackageSpec] = ARM64_PACKAGES,
    attestation: bool = True,
    media: str = "oci",
) -> Index:
    """The usual multi-platform image: amd64 + arm64 (different packages) + attestations."""
    children = [
        build_image(amd64_packages, arch="amd64", created=created, media=media),
        build_image(arm64_packages, arch="arm64", created=created, media=media),
    ]
    return build_index(children, attestation=attestation, media=media)


# -- registry client ---------------------------------------------------------------------------


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        key_end = rest.find("=", position)
        if key_end < 0:
            break
        key = rest[position:key_end].strip().lstrip(",").strip()
        if rest[key_end + 1 : key_end + 2] == '"':
            value_end = rest.find('"', key_end + 2)
            value_end = len(rest) if value_end < 0 else value_end
            params[key.lower()] = rest[key_end + 2 : value_end]
            position = value_end + 1
        else:
            value_end = rest.find(",", key_end + 1)
            value_end = len(rest) if value_end < 0 else value_end
            params[key.lower()] = rest[key_end + 1 : value_end].strip()
            position = value_end
        position = rest.find(",", position)
        position = len(rest) if position < 0 else position + 1
    return scheme.lower(), params


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class RegistryAuth(AuthBase):
    """Answers registry 401 challenges: Basic, or the bearer token flow.

    Credentials go only to the origin that challenged and to the realm it announced. Tokens
    cover every scope seen so far, so one token serves pull, push and delete alike.
    """

    MAX_SCOPES = 20

    def __init__(self, username: str | None = None, password: str | None = None):
        self.username = username
        self.password = password
        self._lock = threading.Lock()
        self._origin: tuple[str, str] | None = None
        self._scheme: str | None = None
        self._token: str | None = None
        self._scopes: list[str] = []

    def __call__(self, request):
        self._apply(request)
        request.register_hook("response", self._answer_challenge)
        return request

    def _apply(self, request) -> None:
        with self._lock:
            if self._origin != _origin(request.url):
                return
            if self._scheme == "basic" and self.username is not None:
                request.prepare_auth(HTTPBasicAuth(self.username, self.password))
            elif self._scheme == "bearer" and self._token:
                request.headers["Authorization"] = f"Bearer {self._token}"

    def _answer_challenge(self, response, **send_options):
        if response.status_code != 401 or getattr(response.request, "_challenge_answered", False):
            return response
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        with self._lock:
            self._origin = _origin(response.url)
            self._scheme = scheme
            if scheme == "bearer":
                self._token = self._fetch_token(params)
            elif scheme != "basic" or self.username is None:
                return response
        response.content  # noqa: B018  (drain so the connection can be reused)
        response.close()
        retry = response.request.copy()
        retry._challenge_answered = True
        self._apply(retry)
        answer = response.connection.send(retry, **send_options)
        answer.history.append(response)
        answer.request = retry
        return answer

    def _fetch_token(self, params: dict[str, str]) -> str | None:
        scope = params.get("scope")
        if scope and scope not in self._scopes:
            self._scopes = [*self._scopes, scope][-self.MAX_SCOPES :]
        query = [("service", params.get("service", ""))] + [("scope", s) for s in self._scopes]
        auth = (self.username, self.password) if self.username is not None else None
        answer = requests.get(params["realm"], params=query, auth=auth, timeout=HTTP_TIMEOUT)
        if answer.status_code != 200:
            return None
        body = answer.json()
        return body.get("token") or body.get("access_token")


def registry_session(
    username: str | None = None, password: str | None = None, pool_size: int = 16
) -> requests.Session:
    """A Session that answers Basic and bearer challenges with these credentials."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth = RegistryAuth(username, password)
    return session


def _session(session: requests.Session | None) -> requests.Session:
    return session if session is not None else registry_session()


def _check(response: requests.Response, expected: int, what: str) -> requests.Response:
    if response.status_code != expected:
        raise RuntimeError(
            f"{what}: {response.request.method} {response.url} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response


def push_blob(
    registry_url: str,
    repo: str,
    blob: Blob,
    session: requests.Session | None = None,
    *,
    check_exists: bool = True,
) -> bool:
    """Upload a blob unless the registry has it; True when it was uploaded."""
    session = _session(session)
    base = registry_url.rstrip("/")
    if check_exists:
        head = session.head(f"{base}/v2/{repo}/blobs/{blob.digest}", timeout=HTTP_TIMEOUT)
        if head.status_code == 200:
            return False
    started = session.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=HTTP_TIMEOUT)
    _check(started, 202, "start blob upload")
    # Location may be relative or absolute, and usually carries a `_state` query already.
    upload_url = urljoin(base + "/", started.headers["Location"])
    separator = "&" if "?" in upload_url else "?"
    finished = session.put(
        f"{upload_url}{separator}{urlencode({'digest': blob.digest})}",
        data=blob.data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=HTTP_TIMEOUT,
    )
    _check(finished, 201, f"finish blob upload {blob.digest}")
    return True


def push_manifest(
    registry_url: str,
    repo: str,
    reference: str,
    manifest: bytes,
    media_type: str,
    session: requests.Session | None = None,
) -> str:
    """PUT a manifest under a tag or digest; returns the registry's Docker-Content-Digest."""
    session = _session(session)
    answer = session.put(
        f"{registry_url.rstrip('/')}/v2/{repo}/manifests/{reference}",
        data=manifest,
        headers={"Content-Type": media_type},
        timeout=HTTP_TIMEOUT,
    )
    _check(answer, 201, f"push manifest {repo}:{reference}")
    return answer.headers["Docker-Content-Digest"]


def push_image(
    registry_url: str,
    repo: str,
    tag: str | None,
    image: Image,
    session: requests.Session | None = None,
) -> str:
    """Push blobs then the manifest (by digest when `tag` is None); returns the digest."""
    session = _session(session)
    for blob in image.blobs:
        push_blob(registry_url, repo, blob, session)
    digest = push_manifest(
        registry_url, repo, tag or image.digest, image.manifest, image.media_type, session
    )
    if digest != image.digest:
        raise RuntimeError(f"registry computed {digest}, expected {image.digest}")
    return digest


def push_index(
    registry_url: str,
    repo: str,
    tag: str | None,
    index: Index,
    session: requests.Session | None = None,
) -> str:
    """Push every child by digest first (the registry checks they exist), then the index."""
    session = _session(session)
    for child in index.manifests:
        push_image(registry_url, repo, None, child, session)
    digest = push_manifest(
        registry_url, repo, tag or index.digest, index.manifest, index.media_type, session
    )
    if digest != index.digest:
        raise RuntimeError(f"registry computed {digest}, expected {index.digest}")
    return digest


@dataclass(frozen=True)
class PushedTag:
    tag: str
    digest: str
    created: dt.datetime
    size: int


def _many_tag_images(
    *,
    tag_format: str,
    created_start: dt.datetime,
    created_step: dt.timedelta,
    packages: Iterable[PackageSpec] | None,
    media: str,
) -> tuple[Blob, Callable[[int], tuple[str, Image]]]:
    """The shared layer, and tag number -> (tag, image) with its own created date."""
    layer = alpine_layer(packages)

    def image_for(number: int) -> tuple[str, Image]:
        created = created_start + number * created_step
        return tag_format.format(number), image_from_layers([layer], created=created, media=media)

    return layer, image_for


def push_many_tags(
    registry_url: str,
    repo: str,
    count: int,
    *,
    tag_format: str = "v{:05d}",
    created_start: dt.datetime = dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
    created_step: dt.timedelta = dt.timedelta(hours=1),
    packages: Iterable[PackageSpec] | None = None,
    media: str = "oci",
    session: requests.Session | None = None,
    workers: int = 8,
) -> list[PushedTag]:
    """Push `count` tags sharing one layer, each with its own config (created date) and digest.

    Tag i is `tag_format.format(i)`, created at `created_start + i * created_step`. The shared
    layer is uploaded once; each tag costs a config upload and a manifest PUT, done by a pool
    of `workers` threads. The registry's CPU is the limit (about 120 tags/s on 2 cores); for
    thousands of tags `write_many_tags_to_storage` is much faster.
    """
    session = _session(session)
    layer, image_for = _many_tag_images(
        tag_format=tag_format,
        created_start=created_start,
        created_step=created_step,
        packages=packages,
        media=media,
    )
    push_blob(registry_url, repo, layer, session)

    def push_one(number: int) -> PushedTag:
        tag, image = image_for(number)
        push_blob(registry_url, repo, image.config, session, check_exists=False)
        digest = push_manifest(registry_url, repo, tag, image.manifest, image.media_type, session)
        return PushedTag(tag=tag, digest=digest, created=image.created, size=image.size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(push_one, range(count)))


def write_many_tags_to_storage(
    storage_dir: Path,
    repo: str,
    count: int,
    *,
    tag_format: str = "v{:05d}",
    created_start: dt.datetime = dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
    created_step: dt.timedelta = dt.timedelta(hours=1),
    packages: Iterable[PackageSpec] | None = None,
    media: str = "oci",
) -> list[PushedTag]:
    """The same tags as `push_many_tags`, written straight into a filesystem registry's storage.

    About 750 tags/s here (6x the HTTP push; mkdir-bound), for sync tests at scale. It writes
    the layout distribution 2.x itself writes (blobs by digest, link files per repository) and
    works on a running registry because the test registries keep no in-memory blob cache.
    """
    root = Path(storage_dir) / "docker/registry/v2"
    repository = root / "repositories" / repo
    layer, image_for = _many_tag_images(
        tag_format=tag_format,
        created_start=created_start,
        created_step=created_step,
        packages=packages,
        media=media,
    )
    _store_blob(root, layer.data, layer.digest)
    _write_link(repository / "_layers" / _digest_path(layer.digest) / "link", layer.digest)
    pushed = []
    for number in range(count):
        tag, image = image_for(number)
        _store_blob(root, image.config.data, image.config.digest)
        _write_link(
            repository / "_layers" / _digest_path(image.config.digest) / "link",
            image.config.digest,
        )
        _store_blob(root, image.manifest, image.digest)
        manifests = repository / "_manifests"
        _write_link(manifests / "revisions" / _digest_path(image.digest) / "link", image.digest)
        tag_dir = manifests / "tags" / tag
        _write_link(tag_dir / "current" / "link", image.digest)
        _write_link(tag_dir / "index" / _digest_path(image.digest) / "link", image.digest)
        pushed.append(
            PushedTag(tag=tag, digest=image.digest, created=image.created, size=image.size)
        )
    return pushed


def _digest_path(digest: str) -> Path:
    algorithm, hex_digest = digest.split(":")
    return Path(algorithm) / hex_digest


def _store_blob(root: Path, data: bytes, digest: str) -> None:
    algorithm, hex_digest = digest.split(":")
    path = root / "blobs" / algorithm / hex_digest[:2] / hex_digest / "data"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _write_link(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest)


def fetch_manifest(
    registry_url: str,
    repo: str,
    reference: str,
    session: requests.Session | None = None,
) -> requests.Response:
    """GET a manifest with all four media types accepted (the response, for its headers)."""
    return _session(session).get(
        f"{registry_url.rstrip('/')}/v2/{repo}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=HTTP_TIMEOUT,
    )


def delete_manifest(
    registry_url: str,
    repo: str,
    digest: str,
    session: requests.Session | None = None,
) -> requests.Response:
    """DELETE a manifest by digest: 202 done, 404 gone already, 405 delete disabled."""
    return _session(session).delete(
        f"{registry_url.rstrip('/')}/v2/{repo}/manifests/{digest}", timeout=HTTP_TIMEOUT
    )
