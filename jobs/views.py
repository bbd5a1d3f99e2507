"""The jobs page: sync, scan and cleanup jobs of the registries the user can see."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from jobs.models import Job
from registries.fragments import vary_on_htmx, wants_fragment
from registries.permissions import Action, can, visible_registries

JOBS_PER_PAGE = 50


def _visible_jobs(user):
    """Jobs of visible registries, and registry-less jobs the user started."""
    return Job.objects.filter(
        Q(registry__in=visible_registries(user)) | Q(registry__isnull=True, created_by=user)
    ).select_related("registry", "created_by")


@login_required
@vary_on_htmx
@require_GET
def job_list(request):
    jobs = _visible_jobs(request.user)
    kind = request.GET.get("kind", "")
    if kind in Job.Kind.values:
        jobs = jobs.filter(kind=kind)
    status = request.GET.get("status", "")
    if status in Job.Status.values:
        jobs = jobs.filter(status=status)
    page = Paginator(jobs.defer("params", "result"), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "kind": kind,
        "status": status,
        "kinds": Job.Kind.choices,
        "statuses": Job.Status.choices,
        "polling": any(job.is_active for job in page.object_list),
    }
    if wants_fragment(request, "job-table"):
        return render(request, "jobs/_job_table.html", context)
    return render(request, "jobs/jobs.html", context)


@login_required
@vary_on_htmx
@require_GET
def job_detail(request, job_id):
    job = get_object_or_404(_visible_jobs(request.user), pk=job_id)
    if job.registry is None and job.created_by_id != request.user.pk:
        raise Http404("No such job.")
    context = {"job": job, "results": (job.result or {}).get("results", [])}
    if job.kind == Job.Kind.CLEANUP and job.registry is not None:
        from registries.cleanup import garbage_collection_steps

        context["gc"] = garbage_collection_steps(job.registry)
        context["can_cleanup"] = can(request.user, Action.CLEANUP, job.registry)
    if wants_fragment(request, "job-panel"):
        return render(request, "jobs/_job_panel.html", context)
    return render(request, "jobs/job.html", context)
