"""Bulk cleanup: rules -> a dry-run plan -> a background job that deletes exactly that plan.

Rules select tags per repository (patterns, age, keep the newest N images by created date,
protected tags). A digest is deleted only when every tag pointing at it in the repository is
selected: deleting a digest removes all of its tags, so one kept sibling keeps the image and
its selected tags are reported as held back. An index goes with its platform children (unless
something kept still uses them), so a plain `garbage-collect` gives their space back without
the `--delete-untagged` flag that would break other multi-platform images.
"""

import fnmatch
import hashlib
import json
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.utils import timezone

from audit import log as audit
from audit.models import AuditEvent
from jobs.models import Job
from registries import deletion
from registries.client import (
    DeleteNotSupported,
    NotFound,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
)
from registries.models import IndexChild, Manifest, Repository, Tag


class Syntax:
    GLOB = "glob"
    REGEX = "regex"
    CHOICES = [
        (GLOB, "Glob: * any characters (including /), ? one character, [abc] a set"),
        (REGEX, "Regular expression (Python syntax), matched against the whole name"),
    ]


class InvalidRule(ValueError):
    """A rule that cannot be applied; the message says which one and why."""


def compile_pattern(pattern, syntax):
    """A compiled regex matched with fullmatch() against a whole name."""
    pattern = pattern.strip()
    if not pattern:
        raise InvalidRule("A pattern cannot be empty; use * (glob) or .* (regex) for all.")
    if syntax == Syntax.GLOB:
        return re.compile(fnmatch.translate(pattern))
    if syntax != Syntax.REGEX:
        raise InvalidRule(f"Unknown pattern syntax {syntax!r}.")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise InvalidRule(f"{pattern!r} is not a valid regular expression: {error}.") from None


@dataclass(frozen=True)
class CleanupRules:
    repository_pattern: str = "*"
    tag_pattern: str = "*"
    syntax: str = Syntax.GLOB
    older_than_days: int | None = None
    keep_newest: int | None = None
    protected: tuple = ("latest",)

    def __post_init__(self):
        for pattern in (self.repository_pattern, self.tag_pattern, *self.protected):
            compile_pattern(pattern, self.syntax)
        for name in ("older_than_days", "keep_newest"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidRule(f"{name.replace('_', ' ')} cannot be negative.")

    @property
    def uses_dates(self):
        return self.older_than_days is not None or self.keep_newest is not None

    def as_params(self):
        return {**asdict(self), "protected": list(self.protected)}

    @classmethod
    def from_params(cls, params):
        return cls(**{**params, "protected": tuple(params.get("protected", ()))})

    def describe(self):
        parts = [f"repositories {self.repository_pattern}", f"tags {self.tag_pattern}"]
        parts[-1] += f" ({self.syntax})"
        if self.older_than_days is not None:
            parts.append(f"older than {self.older_than_days} days")
        if self.keep_newest is not None:
            parts.append(f"keep the newest {self.keep_newest} per repository")
        if self.protected:
            parts.append("protected: " + ", ".join(self.protected))
        return "; ".join(parts)


@dataclass
class DigestDeletion:
    """One manifest to delete from one repository, and the tags that go with it."""

    repository: str
    digest: str
    tags: list
    created: object = None
    size_bytes: int = 0
    is_index: bool = False
    # Platform and attestation manifests of a deleted index that nothing kept uses.
    children: list = field(default_factory=list)
    manifest_id: int = 0

    def as_item(self):
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": sorted(self.tags),
            "children": sorted(self.children),
        }


@dataclass
class HeldTag:
    tag: str
    digest: str
    reason: str


@dataclass
class RepositoryPlan:
    name: str
    deletions: list = field(default_factory=list)
    held: list = field(default_factory=list)
    kept: int = 0
    bytes_freed: int = 0

    @property
    def tag_count(self):
        return sum(len(item.tags) for item in self.deletions)


@dataclass
class CleanupPlan:
    repositories: list
    bytes_freed: int = 0

    @property
    def deletions(self):
        return [item for repo in self.repositories for item in repo.deletions]

    @property
    def tag_count(self):
        return sum(repo.tag_count for repo in self.repositories)

    @property
    def held_count(self):
        return sum(len(repo.held) for repo in self.repositories)

    def items(self):
        return [item.as_item() for item in self.deletions]

    @property
    def fingerprint(self):
        """Identifies exactly what would be deleted, so a confirmation can prove it saw this."""
        text = json.dumps(self.items(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _TagRow:
    repository_id: int
    name: str
    manifest_id: int
    digest: str
    created: object
    is_index: bool
    size_bytes: int


def _tag_rows(registry):
    rows = Tag.objects.filter(repository__registry=registry).values_list(
        "repository_id",
        "name",
        "manifest_id",
        "manifest__digest",
        "manifest__created",
        "manifest__is_index",
        "manifest__size_bytes",
    )
    return [_TagRow(*row) for row in rows]


def _selected(rows, rules, now):
    """The names of the repository's tags the rules select, before the per-digest check."""
    tag_pattern = compile_pattern(rules.tag_pattern, rules.syntax)
    protected = [compile_pattern(pattern, rules.syntax) for pattern in rules.protected]
    candidates = [
        row
        for row in rows
        if tag_pattern.fullmatch(row.name)
        and not any(pattern.fullmatch(row.name) for pattern in protected)
    ]
    if rules.uses_dates:
        # Without a created date neither age nor "newest" can be judged: such tags stay.
        candidates = [row for row in candidates if row.created is not None]
    if rules.keep_newest is not None:
        newest_first = sorted(
            {row.manifest_id: row.created for row in candidates}.items(),
            key=lambda item: item[1],
            reverse=True,
        )
        kept_images = {manifest_id for manifest_id, _ in newest_first[: rules.keep_newest]}
        candidates = [row for row in candidates if row.manifest_id not in kept_images]
    if rules.older_than_days is not None:
        cutoff = now - timedelta(days=rules.older_than_days)
        candidates = [row for row in candidates if row.created < cutoff]
    return {row.name for row in candidates}


def build_plan(registry, rules, now=None):
    """The dry run: what the rules would delete in the registry, read from the cache only."""
    now = now or timezone.now()
    repository_pattern = compile_pattern(rules.repository_pattern, rules.syntax)
    repositories = {
        repo.pk: repo.name
        for repo in Repository.objects.filter(registry=registry).order_by("name")
        if repository_pattern.fullmatch(repo.name)
    }
    all_rows = _tag_rows(registry)
    rows_by_repository = defaultdict(list)
    for row in all_rows:
        rows_by_repository[row.repository_id].append(row)
    children_of = _children_of_indexes(row.manifest_id for row in all_rows if row.is_index)

    plans, deleted_pairs = [], set()
    for repository_id, name in repositories.items():
        rows = rows_by_repository.get(repository_id, [])
        plan = _plan_repository(name, rows, _selected(rows, rules, now), children_of)
        deleted_pairs |= {(repository_id, item.manifest_id) for item in plan.deletions}
        if plan.deletions or plan.held:
            plans.append(plan)
    kept_ids = {
        row.manifest_id
        for row in all_rows
        if (row.repository_id, row.manifest_id) not in deleted_pairs
    }
    kept_ids |= {child_id for i in kept_ids for child_id, _ in children_of.get(i, ())}
    plan = CleanupPlan(repositories=plans)
    _count_freed_bytes(plan, kept_ids, children_of)
    return plan


def _children_of_indexes(index_ids):
    """{index id: [(child manifest id or None, child digest)]}, attestations included."""
    children = defaultdict(list)
    rows = IndexChild.objects.filter(index_id__in=set(index_ids)).values_list(
        "index_id", "child_id", "digest"
    )
    for index_id, child_id, digest in rows:
        children[index_id].append((child_id, digest))
    return children


def _plan_repository(name, rows, selected, children_of):
    plan = RepositoryPlan(name=name)
    tags_of = defaultdict(list)
    for row in rows:
        tags_of[row.manifest_id].append(row)
    kept_ids = set()
    for manifest_id, tag_rows in tags_of.items():
        names = {row.name for row in tag_rows}
        chosen = names & selected
        if not chosen:
            kept_ids.add(manifest_id)
            continue
        if chosen != names:
            kept_ids.add(manifest_id)
            kept_names = ", ".join(sorted(names - chosen))
            for tag_name in sorted(chosen):
                reason = f"shares its digest with {kept_names}, which the rules keep"
                plan.held.append(HeldTag(tag_name, tag_rows[0].digest, reason))
            continue
        first = tag_rows[0]
        plan.deletions.append(
            DigestDeletion(
                repository=name,
                digest=first.digest,
                tags=sorted(names),
                created=first.created,
                size_bytes=first.size_bytes,
                is_index=first.is_index,
                manifest_id=manifest_id,
            )
        )
    still_used = {digest for i in kept_ids for _, digest in children_of.get(i, ())}
    still_used |= {row.digest for row in rows if row.manifest_id in kept_ids}
    for item in plan.deletions:
        item.children = sorted(
            {digest for _, digest in children_of.get(item.manifest_id, ())} - still_used
        )
    plan.deletions.sort(key=lambda item: (item.created is None, item.created), reverse=False)
    plan.kept = sum(len(tag_rows) for i, tag_rows in tags_of.items() if i in kept_ids)
    return plan


def _count_freed_bytes(plan, kept_ids, children_of):
    """Bytes garbage collection would free: blobs of deleted images that nothing kept uses.

    Blobs are shared across the whole registry, so "kept" means any image still tagged in
    any repository. Each repository's figure counts its own images; the total counts a blob
    once even when two repositories' deletions free it.
    """
    deleted_ids = {item.manifest_id for item in plan.deletions}
    deleted_ids |= {c for i in deleted_ids for c, _ in children_of.get(i, ()) if c}
    deleted_ids -= kept_ids
    kept_blobs = set()
    for manifest in Manifest.objects.filter(pk__in=kept_ids).only(
        "layers", "config_digest", "config_size"
    ):
        kept_blobs |= set(manifest.blob_sizes())
    deleted = {
        manifest.pk: manifest
        for manifest in Manifest.objects.filter(pk__in=deleted_ids).only(
            "digest", "layers", "config_digest", "config_size", "raw"
        )
    }
    total = {}
    for repo in plan.repositories:
        freed = {}
        for item in repo.deletions:
            ids = [item.manifest_id] + [c for c, _ in children_of.get(item.manifest_id, ()) if c]
            for manifest in (deleted[i] for i in ids if i in deleted):
                # The manifest's own JSON is a blob too.
                freed[manifest.digest] = len(manifest.raw.encode())
                freed.update(
                    (digest, size)
                    for digest, size in manifest.blob_sizes().items()
                    if digest not in kept_blobs
                )
        repo.bytes_freed = sum(freed.values())
        total.update(freed)
    plan.bytes_freed = sum(total.values())


# -- execution ----------------------------------------------------------------------------


def start_cleanup(registry, rules, plan, *, user, request=None):
    """Queue the confirmed plan as a cleanup job and audit the rules it came from."""
    from registries.tasks import cleanup_registry_task

    job = Job.objects.create(
        kind=Job.Kind.CLEANUP,
        registry=registry,
        target=f"{plan.tag_count} tags in {len(plan.repositories)} "
        + ("repository" if len(plan.repositories) == 1 else "repositories"),
        params={
            "rules": rules.as_params(),
            "plan": plan.items(),
            "bytes_freed": plan.bytes_freed,
        },
        progress_total=len(plan.deletions),
        created_by=user,
    )
    audit.record(
        "cleanup.start",
        request=request,
        actor=user,
        registry=registry,
        target=rules.describe(),
        params={
            "job": job.pk,
            "rules": rules.as_params(),
            "digests": len(plan.deletions),
            "tags": plan.tag_count,
            "bytes_freed": plan.bytes_freed,
        },
    )
    job.enqueue(cleanup_registry_task)
    return job


RESULT_SAVE_INTERVAL_SECONDS = 1.0


class CleanupIncomplete(Exception):
    """Some planned deletes failed; the job's result lists which and why."""


def run_cleanup_job(job):
    """The job's work (run by jobs.runner): delete each planned digest, a result per tag."""
    registry = job.registry
    results = []
    last_saved = 0.0
    with RegistryClient(registry) as client:
        for number, item in enumerate(job.params.get("plan", []), start=1):
            outcome = _run_item(registry, client, item)
            fatal = outcome.pop("fatal", False)
            results.extend(
                {"repository": item["repository"], "tag": tag, "digest": item["digest"], **outcome}
                for tag in item["tags"]
            )
            # The growing result list is rewritten at most once a second, not per delete.
            if time.monotonic() - last_saved >= RESULT_SAVE_INTERVAL_SECONDS:
                job.result = {"results": results}
                job.save(update_fields=["result"])
                last_saved = time.monotonic()
            job.report_progress(number)
            if fatal:
                break
    summary = _summary(job, results)
    if summary["failed"] or summary["not_attempted"]:
        job.result = summary
        raise CleanupIncomplete(
            f"{summary['failed']} of {summary['planned']} tags could not be deleted; "
            "see the results below."
        )
    return summary


def _run_item(registry, client, item):
    repository = Repository.objects.filter(registry=registry, name=item["repository"]).first()
    if repository is None:
        return {"status": "skipped", "detail": "the repository is gone from the cache"}
    current = set(
        Tag.objects.filter(repository=repository, manifest__digest=item["digest"]).values_list(
            "name", flat=True
        )
    )
    newcomers = current - set(item["tags"])
    if newcomers:
        detail = f"not deleted: {', '.join(sorted(newcomers))} now also point at this digest"
        return {"status": "skipped", "detail": detail}
    try:
        outcome = deletion.delete_digest(repository, item["digest"], item["tags"], client=client)
    except deletion.DeletionError as error:
        # Deletes disabled, or the registry gone: every further attempt would fail the same way.
        fatal = isinstance(error.__cause__, DeleteNotSupported | RegistryUnavailable)
        return {"status": "failed", "detail": str(error), "fatal": fatal}
    problems = []
    for child in item.get("children", []):
        try:
            client.delete_manifest(repository.name, child)
        except NotFound:
            pass
        except RegistryError as error:
            problems.append(f"platform manifest {child[:19]}…: {error}")
    detail = "already gone from the registry" if outcome.already_gone else "deleted"
    if problems:
        detail += "; could not delete " + "; ".join(problems)
    return {"status": "deleted", "detail": detail}


def _summary(job, results):
    """Counts of the run, audited with the rules it came from."""
    summary = {
        "results": results,
        "planned": sum(len(item["tags"]) for item in job.params.get("plan", [])),
        **{
            status: sum(1 for row in results if row["status"] == status)
            for status in ("deleted", "failed", "skipped")
        },
    }
    summary["not_attempted"] = summary["planned"] - len(results)
    incomplete = summary["failed"] or summary["not_attempted"]
    audit.record(
        "cleanup.finish",
        actor=job.created_by,
        registry=job.registry,
        target=f"job {job.pk}",
        params={
            "job": job.pk,
            "rules": job.params.get("rules", {}),
            **{
                key: summary[key]
                for key in ("planned", "deleted", "failed", "skipped", "not_attempted")
            },
        },
        result=AuditEvent.Result.FAILED if incomplete else AuditEvent.Result.OK,
    )
    return summary


def garbage_collection_steps(registry):
    """How to get the space back after deletes, for this registry."""
    multi_platform = IndexChild.objects.filter(index__registry=registry).exists()
    return {
        "multi_platform": multi_platform,
        "readonly_env": 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}',
        "dry_run": "registry garbage-collect --dry-run /etc/docker/registry/config.yml",
        "command": "registry garbage-collect /etc/docker/registry/config.yml",
    }
