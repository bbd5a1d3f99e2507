from rest_framework import serializers

from registries.names import validate_repository_name, validate_tag_name


class ImageReferenceSerializer(serializers.Serializer):
    """The original Docker Registry UI's way to name an image: registry, repository, tag."""

    registry_id = serializers.IntegerField(min_value=1)
    repository = serializers.CharField(max_length=255, validators=[validate_repository_name])
    tag = serializers.CharField(max_length=128, validators=[validate_tag_name])


class ScanRequestSerializer(ImageReferenceSerializer):
    wait = serializers.BooleanField(default=False)


class SeverityCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    critical = serializers.IntegerField()
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    unknown = serializers.IntegerField()
    fixable = serializers.IntegerField()


class LayerCountsSerializer(SeverityCountsSerializer):
    digest = serializers.CharField()
    size = serializers.IntegerField()


class ScanResultsSerializer(SeverityCountsSerializer):
    """The original UI's scan-results answer: counts, and counts per real image layer."""

    scanned_at = serializers.DateTimeField(allow_null=True)
    db_updated_at = serializers.DateTimeField(allow_null=True)
    layers = LayerCountsSerializer(many=True)


class ScanDoneSerializer(serializers.Serializer):
    """The answer of a scan with "wait": true that finished in time."""

    status = serializers.ChoiceField(choices=["success"])
    vulnerabilities = SeverityCountsSerializer()


class ScanFailedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["error"])
    error = serializers.CharField()
    job = serializers.DictField()
