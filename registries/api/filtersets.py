"""Query filters of the registry API lists."""

import django_filters
from rest_framework import serializers

from registries import browse
from registries.models import Repository
from registries.names import validate_repository_name


class RepositoryFilterSet(django_filters.FilterSet):
    registry = django_filters.NumberFilter(field_name="registry_id")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Repository
        fields = ["registry", "name", "search"]


TAG_ORDERINGS = [f"{sign}{key}" for key in browse.TAG_SORTS for sign in ("", "-")]


class TagQuerySerializer(serializers.Serializer):
    """The tag list's query: tags belong to one repository of one registry."""

    registry = serializers.IntegerField(min_value=1)
    repository = serializers.CharField(
        max_length=255, help_text="Repository name.", validators=[validate_repository_name]
    )
    search = serializers.CharField(required=False, allow_blank=True, max_length=128)
    ordering = serializers.ChoiceField(
        choices=TAG_ORDERINGS, default=browse.DEFAULT_TAG_SORT, required=False
    )


class RegistryQuerySerializer(serializers.Serializer):
    registry = serializers.IntegerField(min_value=1)


class ImageDeleteQuerySerializer(RegistryQuerySerializer):
    repository = serializers.CharField(
        max_length=255,
        help_text="The repository to delete the digest from.",
        validators=[validate_repository_name],
    )
