"""Serializers of the /api/v1/ scanning endpoints (scans, findings, search, diff)."""

from rest_framework import serializers

from registries.api.serializers import VulnerabilitySummarySerializer
from scanning.models import SEVERITIES, Finding, Scan


class ImageTagSerializer(serializers.Serializer):
    registry = serializers.IntegerField(source="repository.registry_id")
    repository = serializers.CharField(source="repository.name")
    tag = serializers.CharField(source="name")


class ScanSerializer(serializers.ModelSerializer):
    summary = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField(help_text="Visible tags pointing at the digest.")

    class Meta:
        model = Scan
        fields = [
            "digest",
            "status",
            "trivy_version",
            "db_updated_at",
            "os",
            "started_at",
            "finished_at",
            "error",
            "failed_at",
            "child_digests",
            "summary",
            "tags",
        ]

    def get_summary(self, scan) -> VulnerabilitySummarySerializer(allow_null=True):
        return self.context["summaries"].get(scan.digest)

    def get_tags(self, scan) -> ImageTagSerializer(many=True):
        return ImageTagSerializer(self.context["tags"].get(scan.digest, []), many=True).data


class FindingSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="scan.digest", read_only=True)
    fixable = serializers.BooleanField(source="is_fixable", read_only=True)

    class Meta:
        model = Finding
        fields = [
            "digest",
            "vulnerability_id",
            "package",
            "installed_version",
            "fixed_version",
            "fixable",
            "status",
            "severity",
            "title",
            "primary_url",
            "layer_digest",
            "target",
            "class_name",
            "package_type",
        ]


class FindingQuerySerializer(serializers.Serializer):
    registry = serializers.IntegerField(min_value=1)
    severity = serializers.MultipleChoiceField(choices=SEVERITIES, required=False)
    package = serializers.CharField(required=False, max_length=255)
    vulnerability_id = serializers.CharField(required=False, max_length=100)
    fixable = serializers.BooleanField(required=False, allow_null=True, default=None)


class ScanQuerySerializer(serializers.Serializer):
    registry = serializers.IntegerField(required=False, min_value=1)
    repository = serializers.CharField(required=False, max_length=255)
    tag = serializers.CharField(required=False, max_length=128)


class VulnerabilityQuerySerializer(serializers.Serializer):
    id = serializers.CharField(required=False, max_length=100, help_text="e.g. CVE-2024-1234")
    package = serializers.CharField(required=False, max_length=255)
    below_version = serializers.CharField(
        required=False, max_length=255, help_text="Only installed versions below this one."
    )

    def validate(self, attrs):
        if not attrs.get("id", "").strip() and not attrs.get("package", "").strip():
            raise serializers.ValidationError({"detail": "Give a vulnerability id or a package."})
        return attrs


class HitFindingSerializer(serializers.Serializer):
    vulnerability_id = serializers.CharField()
    package = serializers.CharField()
    installed_version = serializers.CharField()
    fixed_version = serializers.CharField()
    severity = serializers.CharField()


class SearchHitSerializer(serializers.Serializer):
    registry = serializers.IntegerField(source="registry.pk")
    registry_name = serializers.CharField(source="registry.name")
    repository = serializers.CharField()
    tag = serializers.CharField()
    digest = serializers.CharField()
    findings = HitFindingSerializer(many=True)


class DiffQuerySerializer(serializers.Serializer):
    registry = serializers.IntegerField(min_value=1)
    base = serializers.CharField(max_length=100, help_text="Digest of the older image.")
    head = serializers.CharField(max_length=100, help_text="Digest of the newer image.")


class DiffSerializer(serializers.Serializer):
    base = serializers.CharField()
    head = serializers.CharField()
    added = HitFindingSerializer(many=True, help_text="In head, not in base.")
    fixed = HitFindingSerializer(many=True, help_text="In base, gone from head.")
    unchanged = HitFindingSerializer(many=True)
