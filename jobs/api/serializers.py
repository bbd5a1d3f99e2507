from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "registry",
            "digest",
            "target",
            "params",
            "progress_done",
            "progress_total",
            "percent",
            "result",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]
        read_only_fields = fields
