from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    registry_name = serializers.CharField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "registry",
            "registry_name",
            "target",
            "params",
            "result",
            "message",
            "ip",
        ]
        read_only_fields = fields
