"""The audit log: registry admins read their registries' events, superusers everything."""

import django_filters
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView

from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent
from registries.permissions import Action, visible_registries


class AuditEventFilterSet(django_filters.FilterSet):
    registry = django_filters.NumberFilter(field_name="registry_id")
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["registry", "actor", "action", "result", "since", "until"]


class AuditEventListView(ListAPIView):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["at"]
    ordering = ["-at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        user = self.request.user
        if user.is_superuser:
            return AuditEvent.objects.all()
        administered = visible_registries(user, Action.CHANGE_REGISTRY)
        if not administered.exists():
            raise PermissionDenied("The audit log is for registry admins.")
        return AuditEvent.objects.filter(registry__in=administered)
