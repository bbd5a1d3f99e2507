"""Files an image layer needs so Trivy sees Alpine 3.18 and a given set of apk packages.

Trivy 0.59.1 takes the OS from ``etc/alpine-release`` (and ``etc/os-release``), looks up
advisories in the bucket ``alpine <major.minor>`` and, per installed package, the sub-bucket
named after the apk origin (``o:``). The installed version it reports comes from ``V:``.
"""

from __future__ import annotations

import base64
import hashlib

ALPINE_RELEASE = "3.18.4"

# apk names architectures its own way; index by the OCI platform architecture.
APK_ARCH_BY_PLATFORM = {"amd64": "x86_64", "arm64": "aarch64"}

Package = tuple[str, str, str]  # (name, version, origin)


def os_release(release: str = ALPINE_RELEASE) -> bytes:
    major_minor = ".".join(release.split(".")[:2])
    return (
        'NAME="Alpine Linux"\n'
        "ID=alpine\n"
        f"VERSION_ID={release}\n"
        f'PRETTY_NAME="Alpine Linux v{major_minor}"\n'
        'HOME_URL="https://alpinelinux.org/"\n'
        'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n'
    ).encode()


def apk_checksum(name: str, version: str) -> str:
    """A stable ``C:`` value: ``Q1`` + base64 SHA-1, the form apk writes (Trivy decodes it)."""
    digest = hashlib.sha1(f"{name}-{version}".encode(), usedforsecurity=False).digest()
    return "Q1" + base64.b64encode(digest).decode()


def apk_stanza(name: str, version: str, origin: str, arch: str) -> str:
    # ``o:`` must come after ``V:``: Trivy copies the version seen so far as the source version.
    return (
        f"C:{apk_checksum(name, version)}\nP:{name}\nV:{version}\nA:{arch}\nL:MIT\no:{origin}\n\n"
    )


def apk_installed_db(packages: list[Package] | tuple[Package, ...], arch: str) -> bytes:
    return "".join(apk_stanza(name, ver, origin, arch) for name, ver, origin in packages).encode()


def alpine_layer_files(
    packages: list[Package] | tuple[Package, ...],
    *,
    architecture: str = "amd64",
    release: str = ALPINE_RELEASE,
) -> dict[str, bytes]:
    """Relative paths (no leading ``/``, no directory entries needed) to file contents.

    ``packages`` are ``(name, version, origin)`` tuples; ``architecture`` is the OCI platform
    name (``amd64``/``arm64``) and only sets the apk ``A:`` field.
    """
    apk_arch = APK_ARCH_BY_PLATFORM.get(architecture, architecture)
    return {
        "etc/alpine-release": f"{release}\n".encode(),
        "etc/os-release": os_release(release),
        "lib/apk/db/installed": apk_installed_db(packages, apk_arch),
    }
