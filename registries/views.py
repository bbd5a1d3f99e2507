"""The team's pages: dashboard, registry, repository, image, delete and bulk cleanup.

Views stay thin: they check permissions (registries.permissions only), read the cache through
registries.browse and hand changes to registries.deletion and registries.cleanup. No view
talks to a registry while rendering a page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import log as audit
from jobs.models import Job
from registries import browse, cleanup, deletion, scan_info
from registries.fragments import vary_on_htmx, wants_fragment
from registries.models import Manifest, Registry, Repository, Role, Tag
from registries.permissions import Action, allows, get_registry, role_for, roles_by_registry
from registries.sync import request_sync
from registries.ui_forms import CleanupForm

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50
PAGE_SIZES = (25, 50, 100, 200)


def _page(request, queryset, default_size):
    try:
        size = int(request.GET.get("per_page", default_size))
    except ValueError:
        size = default_size
    size = size if size in PAGE_SIZES else default_size
    return Paginator(queryset, size).get_page(request.GET.get("page")), size


def _repository(registry, name):
    return get_object_or_404(Repository, registry=registry, name=name)


def _safe_next(request):
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if allowed else ""


def _permissions(user, registry):
    role = role_for(user, registry)
    return {action.value: allows(role, action) for action in Action}


@login_required
@require_GET
def dashboard(request):
    roles = roles_by_registry(request.user)
    registries = list(Registry.objects.filter(pk__in=roles).order_by("name"))
    ids = [registry.pk for registry in registries]
    counts = {
        row["registry_id"]: row
        for row in Repository.objects.filter(registry_id__in=ids)
        .values("registry_id")
        .annotate(repositories=Count("id"), tags=Sum("tag_count"), newest=Max("last_created"))
    }
    storage = browse.cached_storage_by_registry(
        registries, {registry_id: row["tags"] or 0 for registry_id, row in counts.items()}
    )
    scans = scan_info.overview_by_registry(ids)
    active_syncs = set(
        Job.objects.filter(
            registry_id__in=ids, kind=Job.Kind.SYNC, status__in=Job.ACTIVE
        ).values_list("registry_id", flat=True)
    )
    cards = []
    for registry in registries:
        stats = counts.get(registry.pk, {})
        cards.append(
            {
                "registry": registry,
                "role": Role(roles[registry.pk]),
                "repositories": stats.get("repositories", 0),
                "tags": stats.get("tags") or 0,
                "newest": stats.get("newest"),
                "storage": storage.get(registry.pk, 0),
                "scans": scans.get(registry.pk),
                "syncing": registry.pk in active_syncs,
                "can_sync": allows(roles[registry.pk], Action.SYNC),
            }
        )
    chart = _dashboard_chart(cards)
    totals = {
        "registries": len(cards),
        "repositories": sum(card["repositories"] for card in cards),
        "tags": sum(card["tags"] for card in cards),
        "storage": sum(card["storage"] for card in cards),
        "unhealthy": sum(1 for card in cards if card["registry"].health == "error"),
    }
    recent_jobs = (
        Job.objects.filter(registry_id__in=ids).select_related("registry").order_by("-created_at")
    )[:6]
    return render(
        request,
        "dashboard.html",
        {"cards": cards, "chart": chart, "totals": totals, "recent_jobs": recent_jobs},
    )


SEVERITY_COLOURS = {
    "critical": "#dc2626",
    "high": "#f97316",
    "medium": "#eab308",
    "low": "#3b82f6",
}


def _storage_unit(largest):
    """The decimal unit that shows the largest value with at most three digits."""
    for unit, divisor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if largest >= divisor:
            return unit, divisor
    return "B", 1


def _dashboard_chart(cards):
    """A Chart.js config: severities per registry once scans exist, else storage."""
    labels = [card["registry"].name for card in cards]
    options = {
        "responsive": True,
        "maintainAspectRatio": False,
        "plugins": {"legend": {"position": "bottom"}},
    }
    if any(card["scans"] and card["scans"]["scanned"] for card in cards):
        datasets = [
            {
                "label": name.title(),
                "data": [(card["scans"] or {}).get(name, 0) for card in cards],
                "backgroundColor": colour,
            }
            for name, colour in SEVERITY_COLOURS.items()
        ]
        scales = {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True}}
        title = "Vulnerabilities in scanned images"
    else:
        unit, divisor = _storage_unit(max((card["storage"] for card in cards), default=0))
        datasets = [
            {
                "label": f"Storage ({unit}, shared blobs once)",
                "data": [round(card["storage"] / divisor, 2) for card in cards],
                "backgroundColor": "#6366f1",
                "borderRadius": 6,
            }
        ]
        scales = {"y": {"beginAtZero": True}}
        title = "Storage by registry"
    return {
        "title": title,
        "config": {
            "type": "bar",
            "data": {"labels": labels, "datasets": datasets},
            "options": {**options, "scales": scales},
        },
    }


@login_required
@require_POST
def sync_now(request, registry_id):
    registry = get_registry(request.user, Action.SYNC, registry_id)
    job = request_sync(registry, user=request.user)
    audit.record(
        "registry.sync",
        request=request,
        registry=registry,
        target=registry.name,
        params={"job": job.pk},
    )
    messages.success(
        request, f"Sync of {registry.name} started (job #{job.pk}); the pages update as it runs."
    )
    return redirect(_safe_next(request) or "dashboard")


@login_required
@vary_on_htmx
@require_GET
def registry_detail(request, registry_id):
    registry = get_registry(request.user, Action.VIEW, registry_id)
    search = request.GET.get("q", "").strip()
    # "ns" is a namespace, "/" the top level, empty or missing every repository.
    ns_param = request.GET.get("ns", "")
    namespace = None if not ns_param else "" if ns_param == "/" else ns_param
    sort, queryset = browse.repositories(registry, search, request.GET.get("sort", ""))
    if namespace is not None:
        queryset = browse.in_namespace(queryset, namespace)
    page, per_page = _page(request, queryset, REPOSITORIES_PER_PAGE)
    context = {
        "registry": registry,
        "page": page,
        "per_page": per_page,
        "page_sizes": PAGE_SIZES,
        "sort": sort,
        "search": search,
        "namespace": namespace,
        "ns_param": ns_param,
        "perms": _permissions(request.user, registry),
    }
    if wants_fragment(request, "repository-table"):
        return render(request, "registries/_repository_table.html", context)
    namespaces = browse.namespaces(registry)
    context["namespaces"] = [(name or "/", name, count) for name, count in namespaces]
    context["repository_count"] = sum(count for _, count in namespaces)
    context["sync_job"] = (
        Job.objects.filter(registry=registry, kind=Job.Kind.SYNC).order_by("-created_at").first()
    )
    return render(request, "registries/registry.html", context)


@login_required
@vary_on_htmx
@require_GET
def repository_detail(request, registry_id, repository):
    registry = get_registry(request.user, Action.VIEW, registry_id)
    repo = _repository(registry, repository)
    search = request.GET.get("q", "").strip()
    sort, queryset = browse.tag_listing(repo, search, request.GET.get("sort", ""))
    page, per_page = _page(request, queryset, TAGS_PER_PAGE)
    rows = list(page.object_list)
    siblings = browse.siblings(repo, rows)
    summaries = scan_info.summaries([tag.manifest.digest for tag in rows])
    context = {
        "registry": registry,
        "repository": repo,
        "page": page,
        "rows": [
            {
                "tag": tag,
                "siblings": [name for name in siblings[tag.manifest_id] if name != tag.name],
                "scan": summaries.get(tag.manifest.digest),
            }
            for tag in rows
        ],
        "per_page": per_page,
        "page_sizes": PAGE_SIZES,
        "sort": sort,
        "search": search,
        "perms": _permissions(request.user, registry),
        "scanning": scan_info.available(),
        # Row links are built from this prefix: reversing four URLs per row costs more than
        # the rest of the row's rendering (tag names and digests need no escaping in a path).
        "repository_url": reverse("repository", args=[registry.pk, repo.name]),
    }
    if wants_fragment(request, "tag-table"):
        return render(request, "registries/_tag_table.html", context)
    return render(request, "registries/repository.html", context)


def _image_context(request, registry, repo, manifest, tag=None):
    """Everything the image page shows, from the cache; `platform` picks an index child."""
    children = browse.platform_children(manifest) if manifest.is_index else []
    shown = manifest
    selected = None
    if children:
        wanted = request.GET.get("platform", "")
        selected = next(
            (c for c in children if wanted in (c.digest, c.platform)),
            next((c for c in children if c.platform == "linux/amd64"), children[0]),
        )
        shown = selected.child
    tags_here = list(
        Tag.objects.filter(repository=repo, manifest=manifest)
        .order_by(browse.NaturalSortKey("name"))
        .values_list("name", flat=True)
    )
    digests = [manifest.digest] + ([shown.digest] if shown and shown is not manifest else [])
    summaries = scan_info.summaries(digests)
    return {
        "registry": registry,
        "repository": repo,
        "manifest": manifest,
        "tag": tag,
        "tags_here": tags_here,
        "children": children,
        "selected": selected,
        "shown": shown,
        "config": browse.image_config(shown) if shown else None,
        "history": browse.history_lines(shown.config, shown.layers) if shown else [],
        "scan": summaries.get(manifest.digest),
        "shown_scan": summaries.get(shown.digest) if shown else None,
        "perms": _permissions(request.user, registry),
        "scanning": scan_info.available(),
        "reference": f"{registry.host}/{repo.name}"
        + (f":{tag.name}" if tag else f"@{manifest.digest}"),
    }


def _render_image(request, context):
    if wants_fragment(request, "image-platform"):
        return render(request, "registries/_image_platform.html", context)
    return render(request, "registries/image.html", context)


@login_required
@vary_on_htmx
@require_GET
def image_by_tag(request, registry_id, repository, tag):
    registry = get_registry(request.user, Action.VIEW, registry_id)
    repo = _repository(registry, repository)
    tag_row = get_object_or_404(Tag.objects.select_related("manifest"), repository=repo, name=tag)
    return _render_image(
        request, _image_context(request, registry, repo, tag_row.manifest, tag_row)
    )


@login_required
@vary_on_htmx
@require_GET
def image_by_digest(request, registry_id, repository, digest):
    registry = get_registry(request.user, Action.VIEW, registry_id)
    repo = _repository(registry, repository)
    manifest = get_object_or_404(Manifest, registry=registry, digest=digest)
    return _render_image(request, _image_context(request, registry, repo, manifest))


@login_required
@require_GET
def raw_json(request, registry_id, repository, digest, kind):
    """The cached manifest or config JSON, loaded on demand by the image page."""
    registry = get_registry(request.user, Action.VIEW, registry_id)
    _repository(registry, repository)
    manifest = get_object_or_404(Manifest, registry=registry, digest=digest)
    if kind == "manifest":
        text = browse.pretty_json(manifest.raw)
    elif kind == "config":
        text = browse.pretty_json(manifest.config)
    else:
        raise Http404("Unknown document.")
    return render(request, "registries/_raw_json.html", {"text": text, "kind": kind})


@login_required
@vary_on_htmx
@require_http_methods(["GET", "POST"])
def delete_tag(request, registry_id, repository, tag):
    registry = get_registry(request.user, Action.DELETE_TAG, registry_id)
    repo = _repository(registry, repository)
    tag_row = get_object_or_404(Tag.objects.select_related("manifest"), repository=repo, name=tag)
    going = deletion.tags_sharing_digest(tag_row)
    repository_url = reverse("repository", args=[registry.pk, repo.name])
    if request.method == "POST":
        try:
            outcome = deletion.delete_tag(tag_row, user=request.user, request=request)
        except deletion.DeletionError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, outcome.message)
        return redirect(repository_url)
    context = {
        "registry": registry,
        "repository": repo,
        "tag": tag_row,
        "going": going,
        "others": [name for name in going if name != tag_row.name],
        "repository_url": repository_url,
    }
    template = (
        "registries/_delete_modal.html" if wants_fragment(request) else "registries/delete.html"
    )
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def cleanup_form(request, registry_id):
    """The rules form; a valid POST shows the dry-run preview, never deletes anything."""
    registry = get_registry(request.user, Action.CLEANUP, registry_id)
    form = CleanupForm(request.POST or None, registry=registry)
    context = {"registry": registry, "form": form}
    if request.method == "POST" and form.is_valid():
        plan = cleanup.build_plan(registry, form.rules())
        context.update({"plan": plan, "rules": form.rules()})
        return render(request, "registries/cleanup_preview.html", context)
    return render(request, "registries/cleanup.html", context)


@login_required
@require_POST
def cleanup_run(request, registry_id):
    """Confirm a preview: the plan is rebuilt and must still be the one the user saw."""
    registry = get_registry(request.user, Action.CLEANUP, registry_id)
    form = CleanupForm(request.POST, registry=registry)
    if not form.is_valid():
        return render(request, "registries/cleanup.html", {"registry": registry, "form": form})
    plan = cleanup.build_plan(registry, form.rules())
    if plan.fingerprint != request.POST.get("fingerprint"):
        messages.warning(
            request,
            "The registry's contents changed since the preview (a sync or another delete). "
            "Here is the preview again: check it before confirming.",
        )
        context = {"registry": registry, "form": form, "plan": plan, "rules": form.rules()}
        return render(request, "registries/cleanup_preview.html", context)
    if not plan.deletions:
        messages.info(request, "Nothing to delete: no tag matches these rules.")
        return redirect("cleanup", registry.pk)
    job = cleanup.start_cleanup(registry, form.rules(), plan, user=request.user, request=request)
    return redirect("job", job.pk)
