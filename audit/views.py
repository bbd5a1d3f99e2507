"""The audit log page: registry admins read their registries' events, superusers everything."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.filters import AuditEventFilterSet, audit_events_for, audited_registries
from audit.models import AuditEvent
from registries.fragments import vary_on_htmx, wants_fragment

EVENTS_PER_PAGE = 50


@login_required
@vary_on_htmx
@require_GET
def audit_log(request):
    try:
        events = audit_events_for(request.user)
    except PermissionDenied:
        return render(request, "audit/no_access.html", status=403)
    filters = AuditEventFilterSet(request.GET, queryset=events.select_related("registry"))
    shown = filters.qs if filters.is_valid() else AuditEvent.objects.none()
    page = Paginator(shown, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "registries": audited_registries(request.user).order_by("name").values_list("pk", "name"),
        "actions": events.order_by("action").values_list("action", flat=True).distinct(),
        "filtered": any(request.GET.get(name) for name in AuditEventFilterSet.base_filters),
    }
    if wants_fragment(request, "audit-table"):
        return render(request, "audit/_audit_table.html", context)
    return render(request, "audit/audit.html", context)
