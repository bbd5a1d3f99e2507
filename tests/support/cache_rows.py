"""Cache rows for view tests and the page benchmark, and `sync_into` for real syncs.

Behaviour tests that need the registry's real answers sync a real registry instead; these
rows only stand in for "what a sync left behind" where the registry itself is not the point.
"""

import datetime as dt
import hashlib
import json

from registries.models import IndexChild, Manifest, Repository, Tag
from registries.sync import refresh_repository_totals, sync_registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BASE_CREATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def digest_of(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def image_manifest(registry, seed, *, created=BASE_CREATED, layers=None, arch="amd64"):
    """A single-platform manifest row; `layers` is [(digest seed, size)]."""
    layers = layers if layers is not None else [(f"layer-{seed}", 1000)]
    layer_list = [
        {"digest": digest_of(name), "size": size, "media_type": "layer"} for name, size in layers
    ]
    config = {
        "created": created.isoformat() if created else None,
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "history": [{"created_by": "/bin/sh -c #(nop) ADD file:abc in / "}],
    }
    raw = json.dumps({"schemaVersion": 2, "seed": seed, "layers": layer_list})
    return Manifest.objects.create(
        registry=registry,
        digest=digest_of(raw),
        media_type=OCI_MANIFEST,
        size_bytes=sum(layer["size"] for layer in layer_list) + 100,
        config_digest=digest_of(f"config-{seed}"),
        config_size=100,
        created=created,
        os="linux",
        architecture=arch,
        platforms=[f"linux/{arch}"],
        layers=layer_list,
        config=config,
        raw=raw,
    )


def index_manifest(registry, seed, children, *, created=BASE_CREATED):
    raw = json.dumps({"schemaVersion": 2, "seed": seed, "manifests": [c.digest for c in children]})
    blobs = {}
    for child in children:
        blobs.update(child.blob_sizes())
    index = Manifest.objects.create(
        registry=registry,
        digest=digest_of(raw),
        media_type=OCI_INDEX,
        is_index=True,
        size_bytes=sum(blobs.values()),
        created=created,
        platforms=[f"{c.os}/{c.architecture}" for c in children],
        raw=raw,
    )
    for position, child in enumerate(children):
        IndexChild.objects.create(
            index=index,
            child=child,
            digest=child.digest,
            media_type=OCI_MANIFEST,
            os=child.os,
            architecture=child.architecture,
            position=position,
        )
    return index


def repository_with_tags(registry, name, tags):
    """A repository whose tags are {name: manifest}; totals filled as a sync would."""
    repository = Repository.objects.create(registry=registry, name=name)
    Tag.objects.bulk_create(
        Tag(repository=repository, name=tag, manifest=manifest) for tag, manifest in tags.items()
    )
    refresh_repository_totals(repository)
    repository.save()
    return repository


def sync_into(registry_row, server, repositories):
    """Point the row at a real registry and sync just these repositories (the real sync)."""
    registry_row.url = server.url
    registry_row.catalog_mode = registry_row.CatalogMode.LIST
    registry_row.repository_list = "\n".join(repositories)
    registry_row.save()
    sync_registry(registry_row)
    registry_row.refresh_from_db()
    return registry_row
