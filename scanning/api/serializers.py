from rest_framework import serializers


class ImageReferenceSerializer(serializers.Serializer):
    """The original Docker Registry UI's way to name an image: registry, repository, tag."""

    registry_id = serializers.IntegerField(min_value=1)
    repository = serializers.CharField(max_length=255)
    tag = serializers.CharField(max_length=128)


class ScanRequestSerializer(ImageReferenceSerializer):
    wait = serializers.BooleanField(default=False)
