"""Scanning pages: an image's findings, scan progress, cross-registry search, and diffs.

Views check permissions (registries.permissions) and hand everything else to
scanning.services.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs.models import Job
from registries.models import Manifest, Repository, Tag
from registries.permissions import Action, can, check, get_registry, visible_registries
from scanning import services
from scanning.models import SEVERITIES, Scan


def _image(user, action, registry_id, repository, digest):
    registry = get_registry(user, action, registry_id)
    repo = get_object_or_404(Repository, registry=registry, name=repository)
    manifest = get_object_or_404(Manifest, registry=registry, digest=digest)
    return registry, repo, manifest


def _filters(request):
    return {
        "severities": [s for s in request.GET.getlist("severity") if s in SEVERITIES],
        "fixable_only": request.GET.get("fixable") == "1",
        "package": request.GET.get("package", "").strip(),
        "text": request.GET.get("q", "").strip(),
    }


@login_required
@require_GET
def image_scan(request, registry_id, repository, digest):
    registry, repo, manifest = _image(request.user, Action.VIEW, registry_id, repository, digest)
    scan = Scan.objects.filter(digest=digest).first()
    good = scan if scan is not None and scan.succeeded else None
    filters = _filters(request)
    findings = []
    if good is not None and not manifest.is_index:
        findings = services.filter_findings(good.findings.all(), **filters)
    children = services.platform_children(manifest)
    child_summaries = services.summaries_for_digests(child.digest for child in children)
    group = request.GET.get("group") == "layer"
    current_db = services.current_db_updated_at()
    job = services.last_scan_job(digest)
    return render(
        request,
        "scanning/image_scan.html",
        {
            "registry": registry,
            "repository": repo,
            "manifest": manifest,
            "scan": scan,
            "good": good,
            "stale": good is not None and good.is_stale(current_db),
            "current_db": current_db,
            "findings": findings,
            "groups": services.group_by_layer(findings, manifest) if group else None,
            "group": group,
            "filters": filters,
            "severities": SEVERITIES,
            "children": [(child, child_summaries.get(child.digest)) for child in children],
            "job": job,
            "can_scan": can(request.user, Action.SCAN, registry),
        },
    )


@login_required
@require_GET
def scan_report(request, registry_id, repository, digest):
    """The raw Trivy report, as Trivy wrote it, for download."""
    _image(request.user, Action.VIEW, registry_id, repository, digest)
    scan = services.latest_scan(digest)
    if scan is None or not scan.report_zlib:
        raise Http404("No report is kept for this image.")
    response = HttpResponse(scan.report_json, content_type="application/json")
    filename = f"trivy-{digest.split(':')[-1][:12]}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_POST
def start_scan(request, registry_id, repository, digest):
    registry, repo, manifest = _image(request.user, Action.SCAN, registry_id, repository, digest)
    job = services.request_scan(
        registry, manifest, repository=repo.name, user=request.user, request=request
    )
    if request.htmx:
        return _progress(request, job)
    return redirect("image-scan", registry.pk, repo.name, digest)


@login_required
@require_GET
def scan_progress(request, job_id):
    """The progress of a scan job, polled by htmx until it finishes."""
    job = get_object_or_404(Job.objects.select_related("registry"), pk=job_id, kind=Job.Kind.SCAN)
    if job.registry is None:
        raise Http404("No such job.")
    check(request.user, Action.VIEW, job.registry)
    return _progress(request, job)


def _progress(request, job):
    response = render(request, "scanning/_scan_progress.html", {"job": job})
    if request.htmx and not job.is_active:
        response["HX-Refresh"] = "true"  # show the new results
    return response


@login_required
@require_GET
def search(request):
    """Which images, in the registries the user can see, have a CVE or a package."""
    query = {
        "vulnerability_id": request.GET.get("cve", "").strip(),
        "package": request.GET.get("package", "").strip(),
        "below_version": request.GET.get("below", "").strip(),
    }
    hits = services.search(request.user, **query) if any(query.values()) else None
    return render(request, "scanning/search.html", {"query": query, "hits": hits})


def _resolve(user, registry_id, repository, reference):
    """(registry, repository, manifest, scan) for a tag or digest the user may see."""
    registry = get_registry(user, Action.VIEW, registry_id)
    repo = get_object_or_404(Repository, registry=registry, name=repository)
    if reference.startswith("sha256:"):
        manifest = get_object_or_404(Manifest, registry=registry, digest=reference)
    else:
        manifest = get_object_or_404(Tag, repository=repo, name=reference).manifest
    return registry, repo, manifest, services.latest_scan(manifest.digest)


@login_required
@require_GET
def diff(request):
    """Findings added, fixed and unchanged between two images."""
    sides = {}
    for side in ("a", "b"):
        fields = {
            name: request.GET.get(f"{side}_{name}", "").strip()
            for name in ("registry", "repository", "reference")
        }
        sides[side] = {"fields": fields}
        if all(fields.values()):
            registry, repo, manifest, scan = _resolve(
                request.user, fields["registry"], fields["repository"], fields["reference"]
            )
            sides[side].update(registry=registry, repository=repo, manifest=manifest, scan=scan)
    changes = None
    if all(side.get("scan") for side in sides.values()):
        changes = services.diff_findings(
            services.findings_of(sides["a"]["scan"]), services.findings_of(sides["b"]["scan"])
        )
    return render(
        request,
        "scanning/diff.html",
        {
            "sides": sides,
            "changes": changes,
            "registries": visible_registries(request.user),
        },
    )
