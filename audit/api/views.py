"""The audit log: registry admins read their registries' events, superusers everything."""

from rest_framework.generics import ListAPIView

from audit.api.serializers import AuditEventSerializer
from audit.filters import AuditEventFilterSet, audit_events_for
from audit.models import AuditEvent


class AuditEventListView(ListAPIView):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["at"]
    ordering = ["-at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return audit_events_for(self.request.user)
