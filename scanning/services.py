"""Scanning: queueing scans as jobs, running them, and reading results for UI and API."""

import logging
import re
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from audit import log as audit
from jobs.models import Job
from registries.models import IndexChild, Manifest, Tag
from registries.permissions import visible_registries
from scanning import reports, trivy
from scanning.models import Finding, Scan, ScannerState

logger = logging.getLogger(__name__)

SEARCH_LIMIT = 1000
SCANNER_STATE_ID = 1  # the one ScannerState row
COUNT_FIELDS = ("total", "critical", "high", "medium", "low", "unknown", "fixable")


# -- reading results --------------------------------------------------------------------------


def current_db_updated_at():
    return (
        ScannerState.objects.filter(pk=SCANNER_STATE_ID)
        .values_list("db_updated_at", flat=True)
        .first()
    )


def note_scanner_state(trivy_version, db_updated_at):
    """Remember the newest DB seen; scans made with an older one become stale."""
    with transaction.atomic():
        state, _ = ScannerState.objects.select_for_update().get_or_create(pk=SCANNER_STATE_ID)
        if db_updated_at and (not state.db_updated_at or db_updated_at > state.db_updated_at):
            state.db_updated_at = db_updated_at
        state.trivy_version = trivy_version or state.trivy_version
        state.checked_at = timezone.now()
        state.save()


def latest_scan(digest):
    """The digest's latest good result, or None."""
    return Scan.objects.filter(digest=digest, status=Scan.Status.SUCCEEDED).first()


def summary(scan, current_db=None):
    return {
        **scan.counts(),
        "scanned_at": scan.finished_at,
        "db_updated_at": scan.db_updated_at,
        "stale": scan.is_stale(current_db),
    }


def findings_by_severity():
    """{severity: number of findings} over every stored scan (the /metrics gauge)."""
    rows = Finding.objects.values("severity").annotate(n=Count("id"))
    return {row["severity"]: row["n"] for row in rows}


def summaries_for_digests(digests):
    """{digest: summary} of the digests with a good result, in one query (for tag lists)."""
    current_db = ScannerState.objects.filter(pk=SCANNER_STATE_ID).values("db_updated_at")
    scans = Scan.objects.filter(digest__in=list(digests), status=Scan.Status.SUCCEEDED).annotate(
        current_db=Subquery(current_db)
    )
    return {scan.digest: summary(scan, scan.current_db) for scan in scans}


def last_scan_job(digest):
    return Job.objects.filter(kind=Job.Kind.SCAN, digest=digest).first()


def active_scan_job(digest):
    return Job.objects.filter(kind=Job.Kind.SCAN, digest=digest, status__in=Job.ACTIVE).first()


def platform_children(manifest):
    """An index's scannable children (never attestations), best-known platforms first."""
    if manifest is None or not manifest.is_index:
        return []
    return list(
        manifest.children.filter(is_attestation=False).select_related("child").order_by("position")
    )


def image_manifest_for_layers(manifest):
    """The single-platform manifest whose layers describe this tag (an index's first child)."""
    if manifest is None or not manifest.is_index:
        return manifest
    for child in platform_children(manifest):
        if child.child is not None:
            return child.child
    return None


def layer_summaries(scan, manifest):
    """Counts per real image layer, in the manifest's order, for the original UI's API."""
    layers = manifest.layers if manifest is not None else []
    per_layer = {layer["digest"]: dict.fromkeys(COUNT_FIELDS, 0) for layer in layers}
    if scan is not None:
        for severity, fixed, layer_digest in scan.findings.values_list(
            "severity", "fixed_version", "layer_digest"
        ):
            counts = per_layer.get(layer_digest)
            if counts is None:
                continue
            counts["total"] += 1
            counts[severity.lower()] += 1
            counts["fixable"] += bool(fixed)
    return [
        {"digest": layer["digest"], "size": layer["size"], **per_layer[layer["digest"]]}
        for layer in layers
    ]


def scan_results(manifest):
    """The original UI's `scan-results` answer for a tag's manifest, or None if unscanned."""
    image = image_manifest_for_layers(manifest)
    scan = latest_scan(manifest.digest)
    if scan is None:
        return None
    layer_scan = latest_scan(image.digest) if image is not None and image != manifest else scan
    return {
        **scan.counts(),
        "scanned_at": scan.finished_at,
        "db_updated_at": scan.db_updated_at,
        "layers": layer_summaries(layer_scan, image),
    }


# -- queueing ---------------------------------------------------------------------------------


def request_scan(registry, manifest_or_digest, *, repository, user=None, request=None):
    """Queue a scan of the image (or join the one already queued or running); its Job."""
    from scanning.tasks import run_scan

    digest = getattr(manifest_or_digest, "digest", manifest_or_digest)
    repository_name = getattr(repository, "name", repository)
    job = active_scan_job(digest)
    joined = job is not None
    if job is None:
        try:
            with transaction.atomic():
                job = Job.objects.create(
                    kind=Job.Kind.SCAN,
                    digest=digest,
                    registry=registry,
                    target=f"{repository_name}@{digest}",
                    params={"repository": repository_name},
                    created_by=user if user is not None and user.is_authenticated else None,
                )
        except IntegrityError:  # another request created one a moment ago: join it
            job, joined = active_scan_job(digest), True
            if job is None:  # ...and it has finished already
                return request_scan(
                    registry, digest, repository=repository, user=user, request=request
                )
        if not joined:
            job.enqueue(run_scan)
    if user is not None:
        audit.record(
            "scan.request",
            request=request,
            actor=user,
            registry=registry,
            target=f"{repository_name}@{digest}",
            params={"job": job.pk, "joined": joined},
        )
    return job


def scan_new_digests(registry, digests):
    """Policy hook for the sync and push events: scan digests that have no result yet."""
    if not registry.scan_new_images:
        return []
    digests = set(digests)
    known = set(Scan.objects.filter(digest__in=digests).values_list("digest", flat=True))
    repositories = dict(
        Tag.objects.filter(repository__registry=registry, manifest__digest__in=digests - known)
        .order_by("repository__name")
        .values_list("manifest__digest", "repository__name")
    )
    return [
        request_scan(registry, digest, repository=repository)
        for digest, repository in sorted(repositories.items())
    ]


def rescan_candidates(registry, current_db, limit):
    """(digest, repository) of images to rescan: stale ones first, then never scanned ones."""
    tags = Tag.objects.filter(repository__registry=registry).exclude(
        manifest__digest__in=Job.objects.filter(kind=Job.Kind.SCAN, status__in=Job.ACTIVE).values(
            "digest"
        )
    )
    scan_date = Scan.objects.filter(digest=OuterRef("manifest__digest")).values("db_updated_at")
    has_scan = Scan.objects.filter(digest=OuterRef("manifest__digest")).values("pk")
    annotated = tags.annotate(scan_db=Subquery(scan_date), scan_id=Subquery(has_scan))
    stale = annotated.filter(scan_db__lt=current_db) if current_db else annotated.none()
    picked = {}
    for queryset in (
        stale.order_by("scan_db", "manifest__digest"),
        annotated.filter(scan_id__isnull=True).order_by(
            F("manifest__created").desc(nulls_last=True), "manifest__digest"
        ),
    ):
        for digest, repository in queryset.values_list("manifest__digest", "repository__name"):
            if len(picked) >= limit:
                return list(picked.items())
            picked.setdefault(digest, repository)
    return list(picked.items())


def queue_scheduled_rescans(registries):
    """The scheduled policy: at most `rescan_limit` images per registry, stale ones first."""
    current_db = current_db_updated_at()
    jobs = []
    for registry in registries:
        if registry.rescan_limit <= 0:
            continue
        for digest, repository in rescan_candidates(registry, current_db, registry.rescan_limit):
            jobs.append(request_scan(registry, digest, repository=repository))
    return jobs


# -- running ----------------------------------------------------------------------------------


def scan_targets(job):
    """[(digest, manifest or None)] to run Trivy on: the image, or an index's platforms."""
    manifest = Manifest.objects.filter(registry=job.registry, digest=job.digest).first()
    if manifest is None or not manifest.is_index:
        return manifest, [(job.digest, manifest)]
    return manifest, [(child.digest, child.child) for child in platform_children(manifest)]


def execute_scan(job, *, worker_name, config=None):
    """Run Trivy for the job's image and store the results; raises trivy.TrivyError."""
    config = config or trivy.TrivyConfig.from_settings()
    cache_dir = trivy.worker_cache_dir(config.cache_root, worker_name)
    repository = job.params["repository"]
    manifest, targets = scan_targets(job)
    if not targets:
        raise trivy.TrivyError("This index lists no platform images to scan.")
    job.report_progress(0, len(targets))
    scans = []
    for done, (digest, image) in enumerate(targets, start=1):
        output = trivy.scan_image(
            job.registry, repository, digest, cache_dir=cache_dir, config=config
        )
        note_scanner_state(output.trivy_version, output.db_updated_at)
        scans.append(reports.store_result(digest, output, image))
        job.report_progress(done)
    scan = scans[0] if manifest is None or not manifest.is_index else None
    if scan is None:
        scan = reports.store_index_summary(job.digest, scans)
    return scan


def run_scan_job(job, *, worker_name, config=None):
    """The work of a scan job (the task's body); a failure keeps the earlier good result."""
    try:
        scan = execute_scan(job, worker_name=worker_name, config=config)
    except trivy.TrivyError as exc:
        reports.store_failure(job.digest, exc.reason)
        raise
    return {"scan": scan.pk, **scan.counts(), "seconds": round(job.duration.total_seconds(), 2)}


def refresh_scanner_state(*, worker_name, config=None):
    """Update the DB (or ask the server) and remember its date, so stale scans show."""
    config = config or trivy.TrivyConfig.from_settings()
    cache_dir = trivy.worker_cache_dir(config.cache_root, worker_name)
    trivy.download_database(config, cache_dir)
    version, updated_at = trivy.scanner_state(config, cache_dir)
    note_scanner_state(version, updated_at)
    return updated_at


# -- search and diff --------------------------------------------------------------------------


def version_key(version):
    """A natural ordering for package versions: numbers compare as numbers (1.10 > 1.9).

    Approximate across ecosystems (apk, deb, semver) but right for the common forms.
    """
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|[a-zA-Z]+", version)
    )


@dataclass
class SearchHit:
    registry: object
    repository: str
    tag: str
    digest: str
    findings: list


def search(user, *, vulnerability_id="", package="", below_version=""):
    """Tags, in every registry the user can see, whose image has the CVE or the package."""
    conditions = Q()
    if vulnerability_id:
        conditions &= Q(vulnerability_id__iexact=vulnerability_id.strip())
    if package:
        conditions &= Q(package__iexact=package.strip())
    if not conditions:
        return []
    findings = list(
        Finding.objects.filter(conditions, scan__status=Scan.Status.SUCCEEDED)
        .select_related("scan")
        .order_by("scan__digest", "package")[:SEARCH_LIMIT]
    )
    if below_version:
        limit = version_key(below_version)
        findings = [f for f in findings if version_key(f.installed_version) < limit]
    by_digest = {}
    for finding in findings:
        by_digest.setdefault(finding.scan.digest, []).append(finding)
    registries = visible_registries(user)
    parents = IndexChild.objects.filter(
        digest__in=by_digest, index__registry__in=registries
    ).values_list("index__digest", "digest")
    for index_digest, child_digest in parents:
        by_digest.setdefault(index_digest, []).extend(by_digest[child_digest])
    tags = (
        Tag.objects.filter(repository__registry__in=registries, manifest__digest__in=by_digest)
        .select_related("repository__registry", "manifest")
        .order_by("repository__registry__name", "repository__name", "name")
    )
    return [
        SearchHit(
            registry=tag.repository.registry,
            repository=tag.repository.name,
            tag=tag.name,
            digest=tag.manifest.digest,
            findings=by_digest[tag.manifest.digest],
        )
        for tag in tags
    ]


def finding_key(finding):
    return (finding.vulnerability_id, finding.package)


def diff_findings(before, after):
    """Findings of two images compared by (vulnerability, package): added, fixed, unchanged."""
    old = {finding_key(f): f for f in before}
    new = {finding_key(f): f for f in after}
    return {
        "added": [new[key] for key in sorted(new.keys() - old.keys())],
        "fixed": [old[key] for key in sorted(old.keys() - new.keys())],
        "unchanged": [new[key] for key in sorted(new.keys() & old.keys())],
    }


def findings_of(scan):
    """A scan's findings; for an index, those of its platform children together."""
    if scan is None:
        return Finding.objects.none()
    if scan.child_digests:
        return Finding.objects.filter(scan__digest__in=scan.child_digests).select_related("scan")
    return scan.findings.all()


def sort_findings(findings):
    return sorted(findings, key=lambda f: (f.severity_rank, f.vulnerability_id, f.package))


def wait_for_job(job, seconds, poll=0.25):
    """Reload the job until it is finished or the time is up; the job as last seen."""
    deadline = time.monotonic() + seconds
    while job.is_active and time.monotonic() < deadline:
        time.sleep(poll)
        job.refresh_from_db()
    return job


# -- the findings page ------------------------------------------------------------------------


def filter_findings(findings, *, severities=(), fixable_only=False, package="", text=""):
    """The findings page's filters, applied in the database."""
    if severities:
        findings = findings.filter(severity__in=severities)
    if fixable_only:
        findings = findings.exclude(fixed_version="")
    if package:
        findings = findings.filter(package__icontains=package)
    if text:
        findings = findings.filter(
            Q(vulnerability_id__icontains=text)
            | Q(title__icontains=text)
            | Q(package__icontains=text)
        )
    return sort_findings(findings)


def group_by_layer(findings, manifest):
    """[(layer, findings)] in the image's layer order; `layer` has digest, size and number."""
    layers = manifest.layers if manifest is not None else []
    groups = {
        layer["digest"]: ({**layer, "number": number}, [])
        for number, layer in enumerate(layers, start=1)
    }
    for finding in findings:
        digest = finding.layer_digest or "unknown"
        groups.setdefault(digest, ({"digest": digest, "size": None, "number": None}, []))
        groups[digest][1].append(finding)
    return [group for group in groups.values() if group[1]]
