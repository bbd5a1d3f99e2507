"""The audit log: registry admins read their registries' events, superusers everything."""

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView

from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent
from registries.permissions import Action, visible_registries


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time converted to UTC: PostgreSQL refuses offsets past 15:59."""

    def clean(self, value):
        value = super().clean(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AuditEventFilterSet(django_filters.FilterSet):
    registry = django_filters.NumberFilter(field_name="registry_id")
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

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
