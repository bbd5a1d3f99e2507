"""Who may read which audit events, and how they are filtered: shared by the page and the API."""

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django_filters.fields import IsoDateTimeField

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


def audited_registries(user):
    """The registries whose events the user may read: those they administer."""
    return visible_registries(user, Action.CHANGE_REGISTRY)


def may_read_audit(user):
    return user.is_authenticated and (user.is_superuser or audited_registries(user).exists())


def audit_events_for(user):
    """Every event for superusers, the events of administered registries for registry admins;
    PermissionDenied for everyone else."""
    if user.is_authenticated and user.is_superuser:
        return AuditEvent.objects.all()
    if not may_read_audit(user):
        raise PermissionDenied("The audit log is for registry admins.")
    return AuditEvent.objects.filter(registry__in=audited_registries(user))
