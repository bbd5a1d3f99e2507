"""Background jobs (sync, scan, cleanup, delete) of the registries you can see."""

import django_filters
from django.db.models import Q
from rest_framework import viewsets

from jobs.api.serializers import JobSerializer
from jobs.models import Job
from registries.permissions import visible_registries


class JobFilterSet(django_filters.FilterSet):
    registry = django_filters.NumberFilter(field_name="registry_id")

    class Meta:
        model = Job
        fields = ["registry", "kind", "status", "digest"]


def visible_jobs(user):
    """Jobs of visible registries, plus jobs the user started that belong to no registry."""
    if user.is_superuser:
        return Job.objects.all()
    return Job.objects.filter(
        Q(registry__in=visible_registries(user)) | Q(registry__isnull=True, created_by=user)
    )


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    filterset_class = JobFilterSet
    ordering_fields = ["created_at", "finished_at"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return visible_jobs(self.request.user).select_related("created_by")
