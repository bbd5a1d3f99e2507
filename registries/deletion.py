"""Deleting images: by digest, which takes every tag pointing at it along.

The registry API deletes manifests by digest only (DELETE by tag is a 400), so removing one
tag removes its siblings too. Callers show `tags_sharing_digest` before asking for consent.
"""

from dataclasses import dataclass

from django.db import transaction

from audit import log as audit
from audit.models import AuditEvent
from registries import sync
from registries.client import DeleteNotSupported, NotFound, RegistryClient, RegistryError
from registries.models import Tag

ENABLE_DELETE_HINT = (
    "Deletes are disabled on this registry. Start it with REGISTRY_STORAGE_DELETE_ENABLED=true "
    "(or `storage: delete: enabled: true` in its config.yml), restart it, then try again."
)


class DeletionError(Exception):
    """A delete that did not happen; the message is meant for people."""


@dataclass(frozen=True)
class DeleteOutcome:
    digest: str
    tags: list
    already_gone: bool = False

    @property
    def message(self):
        names = ", ".join(self.tags)
        if self.already_gone:
            return f"The registry no longer had {self.digest[:19]}…; removed {names} from the list."
        return f"Deleted {names} ({self.digest[:19]}…). Space comes back after garbage collection."


def tags_sharing_digest(tag):
    """Names of every tag of the repository that points at the tag's digest (itself included)."""
    return sorted(
        Tag.objects.filter(
            repository_id=tag.repository_id, manifest_id=tag.manifest_id
        ).values_list("name", flat=True)
    )


def delete_tag(tag, *, user, request=None):
    """Delete the tag's digest from the registry, with its sibling tags; audited."""
    repository = tag.repository
    registry = repository.registry
    names = tags_sharing_digest(tag)
    digest = tag.manifest.digest
    params = {"repository": repository.name, "digest": digest, "tags": names}
    target = f"{repository.name}:{tag.name}"

    def record(**result):
        audit.record(
            "tag.delete",
            request=request,
            actor=user,
            registry=registry,
            target=target,
            params=params,
            **result,
        )

    try:
        outcome = delete_digest(repository, digest, names)
    except DeletionError as error:
        record(result=AuditEvent.Result.FAILED, message=str(error))
        raise
    record(message=outcome.message)
    return outcome


def delete_digest(repository, digest, tag_names, *, client=None):
    """DELETE the manifest in the registry, then drop its tags from the cache.

    A digest the registry no longer has (404) counts as deleted: the cache was behind.
    `client` lets a bulk cleanup reuse one connection for many deletes.
    """
    registry = repository.registry
    already_gone = False
    try:
        if client is None:
            with RegistryClient(registry) as own_client:
                own_client.delete_manifest(repository.name, digest)
        else:
            client.delete_manifest(repository.name, digest)
    except DeleteNotSupported as error:
        if registry.delete_enabled is not False:
            registry.delete_enabled = False
            registry.save(update_fields=["delete_enabled"])
        raise DeletionError(ENABLE_DELETE_HINT) from error
    except NotFound:
        already_gone = True
    except RegistryError as error:
        raise DeletionError(f"The delete failed at {registry.name}: {error}") from error
    if not already_gone and registry.delete_enabled is not True:
        registry.delete_enabled = True
        registry.save(update_fields=["delete_enabled"])
    forget_digest(repository, digest)
    return DeleteOutcome(digest=digest, tags=list(tag_names), already_gone=already_gone)


@transaction.atomic
def forget_digest(repository, digest):
    """Remove the repository's tags of a deleted digest and refresh its totals."""
    Tag.objects.filter(repository=repository, manifest__digest=digest).delete()
    sync.refresh_repository_totals(repository)
    repository.save(update_fields=["tag_count", "size_bytes", "last_created"])
