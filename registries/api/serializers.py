"""API representations of registries, members and the cached registry contents."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registries import cleanup
from registries.models import IndexChild, Manifest, Membership, Registry, Repository, Role, Tag
from registries.names import validate_repository_list
from scanning.api.serializers import SeverityCountsSerializer


class RegistrySerializer(serializers.ModelSerializer):
    # Write-only: the API never sends a credential back, only whether one is set.
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, max_length=4096
    )
    has_secret = serializers.BooleanField(read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role in this registry.")

    class Meta:
        model = Registry
        fields = [
            "id",
            "name",
            "url",
            "verify_tls",
            "ca_bundle",
            "username",
            "secret",
            "has_secret",
            "auth_scheme",
            "catalog_mode",
            "repository_list",
            "sync_interval_minutes",
            "max_concurrency",
            "scan_new_images",
            "rescan_limit",
            "health",
            "health_message",
            "health_checked_at",
            "delete_enabled",
            "last_synced_at",
            "created_at",
            "updated_at",
            "role",
        ]
        read_only_fields = [
            "has_secret",
            "auth_scheme",
            "health",
            "health_message",
            "health_checked_at",
            "delete_enabled",
            "last_synced_at",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "max_concurrency": {"min_value": 1, "max_value": 64},
            "repository_list": {"validators": [validate_repository_list]},
        }

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, registry):
        return self.context.get("roles", {}).get(registry.pk)

    def validate_url(self, value):
        if not value.startswith(("http://", "https://")):
            raise serializers.ValidationError("Use an http:// or https:// URL.")
        return value.rstrip("/")

    def validate(self, attrs):
        mode = attrs.get("catalog_mode", getattr(self.instance, "catalog_mode", None))
        repositories = attrs.get("repository_list", getattr(self.instance, "repository_list", ""))
        if mode == Registry.CatalogMode.LIST and not repositories.strip():
            raise serializers.ValidationError(
                {"repository_list": "List at least one repository when the catalog mode is a list."}
            )
        return attrs

    def create(self, validated_data):
        secret = validated_data.pop("secret", None)
        registry = Registry(**validated_data)
        registry.secret = secret or ""
        registry.save()
        return registry

    def update(self, registry, validated_data):
        # An absent secret keeps the stored one; an empty string removes it.
        if "secret" in validated_data:
            registry.secret = validated_data.pop("secret")
        for field, value in validated_data.items():
            setattr(registry, field, value)
        registry.save()
        return registry


class MemberSerializer(serializers.ModelSerializer):
    """A user's role in a registry; group memberships are managed in the admin."""

    user_id = serializers.IntegerField(source="user.pk", read_only=True)
    username = serializers.CharField(source="user.username", max_length=150)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "created_at"]
        read_only_fields = ["created_at"]

    def validate_username(self, value):
        if self.instance is not None:
            if value != self.instance.user.username:
                raise serializers.ValidationError("A membership cannot move to another user.")
            return value
        try:
            user = get_user_model().objects.get_by_natural_key(value)
        except get_user_model().DoesNotExist:
            raise serializers.ValidationError(f"No user named {value!r}.") from None
        registry = self.context["registry"]
        if Membership.objects.filter(registry=registry, user=user).exists():
            raise serializers.ValidationError(f"{value} is already a member; PATCH their role.")
        self.context["member"] = user
        return value

    def create(self, validated_data):
        return Membership.objects.create(
            registry=self.context["registry"],
            user=self.context["member"],
            role=validated_data.get("role", Role.VIEWER),
        )

    def update(self, membership, validated_data):
        membership.role = validated_data.get("role", membership.role)
        membership.save(update_fields=["role"])
        return membership


class MemberUpdateSerializer(MemberSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta(MemberSerializer.Meta):
        extra_kwargs = {"role": {"required": True}}


class RepositorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Repository
        fields = ["id", "registry", "name", "tag_count", "size_bytes", "last_created", "synced_at"]


class VulnerabilitySummarySerializer(SeverityCountsSerializer):
    """Counts of the digest's latest good scan (null when it was never scanned)."""

    scanned_at = serializers.DateTimeField(allow_null=True)
    db_updated_at = serializers.DateTimeField(
        allow_null=True, help_text="Date of the vulnerability DB used."
    )
    stale = serializers.BooleanField(help_text="Scanned with an older DB than the current one.")


class TagSerializer(serializers.ModelSerializer):
    registry = serializers.IntegerField(source="repository.registry_id", read_only=True)
    repository = serializers.CharField(source="repository.name", read_only=True)
    digest = serializers.CharField(source="manifest.digest", read_only=True)
    media_type = serializers.CharField(source="manifest.media_type", read_only=True)
    is_index = serializers.BooleanField(source="manifest.is_index", read_only=True)
    size = serializers.IntegerField(source="manifest.size_bytes", read_only=True)
    created = serializers.DateTimeField(source="manifest.created", read_only=True)
    platforms = serializers.ListField(
        child=serializers.CharField(), source="manifest.platforms", read_only=True
    )
    sibling_tags = serializers.SerializerMethodField(
        help_text="Other tags of the repository on the same digest: deleting one deletes all."
    )
    vulnerabilities = serializers.SerializerMethodField()

    class Meta:
        model = Tag
        fields = [
            "id",
            "registry",
            "repository",
            "name",
            "digest",
            "media_type",
            "is_index",
            "size",
            "created",
            "platforms",
            "sibling_tags",
            "vulnerabilities",
            "first_seen_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_sibling_tags(self, tag):
        names = self.context.get("siblings", {}).get((tag.repository_id, tag.manifest_id), [])
        return [name for name in names if name != tag.name]

    @extend_schema_field(VulnerabilitySummarySerializer(allow_null=True))
    def get_vulnerabilities(self, tag):
        return self.context.get("summaries", {}).get(tag.manifest.digest)


class LayerSerializer(serializers.Serializer):
    digest = serializers.CharField()
    size = serializers.IntegerField()
    media_type = serializers.CharField(required=False)


class IndexChildSerializer(serializers.ModelSerializer):
    platform = serializers.CharField(read_only=True)

    class Meta:
        model = IndexChild
        fields = ["digest", "media_type", "platform", "os", "architecture", "variant"]


class TagRefSerializer(serializers.Serializer):
    repository = serializers.CharField(source="repository.name")
    name = serializers.CharField()


class ImageSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(source="size_bytes")
    layers = LayerSerializer(many=True)
    children = serializers.SerializerMethodField(help_text="Platforms of an index.")
    tags = serializers.SerializerMethodField()
    config = serializers.JSONField()
    labels = serializers.DictField(child=serializers.CharField())
    vulnerabilities = serializers.SerializerMethodField()

    class Meta:
        model = Manifest
        fields = [
            "registry",
            "digest",
            "media_type",
            "is_index",
            "size",
            "created",
            "os",
            "architecture",
            "variant",
            "platforms",
            "children",
            "config_digest",
            "config_size",
            "layers",
            "labels",
            "config",
            "tags",
            "vulnerabilities",
        ]

    @extend_schema_field(IndexChildSerializer(many=True))
    def get_children(self, manifest):
        children = [child for child in manifest.children.all() if not child.is_attestation]
        return IndexChildSerializer(children, many=True).data

    @extend_schema_field(TagRefSerializer(many=True))
    def get_tags(self, manifest):
        tags = manifest.tags.select_related("repository").order_by("repository__name", "name")
        return TagRefSerializer(tags, many=True).data

    @extend_schema_field(VulnerabilitySummarySerializer(allow_null=True))
    def get_vulnerabilities(self, manifest):
        return self.context.get("summaries", {}).get(manifest.digest)


class RemovedTagSerializer(serializers.Serializer):
    repository = serializers.CharField()
    tag = serializers.CharField()


class DeletionResultSerializer(serializers.Serializer):
    digest = serializers.CharField()
    removed_tags = RemovedTagSerializer(many=True, help_text="Every tag the delete removed.")
    already_gone = serializers.BooleanField(
        help_text="The registry no longer had the digest; only the cache was updated."
    )
    message = serializers.CharField()


class ProbeResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    auth_scheme = serializers.CharField(allow_blank=True)
    delete_enabled = serializers.BooleanField(allow_null=True)


class CleanupRequestSerializer(serializers.Serializer):
    """Bulk cleanup rules for one registry; a dry run unless `dry_run` is false."""

    registry = serializers.IntegerField(min_value=1)
    repository_pattern = serializers.CharField(default="*", max_length=300)
    tag_pattern = serializers.CharField(default="*", max_length=300)
    syntax = serializers.ChoiceField(choices=cleanup.Syntax.CHOICES, default=cleanup.Syntax.GLOB)
    older_than_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=36500
    )
    keep_newest = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=100000
    )
    protected = serializers.ListField(
        child=serializers.CharField(max_length=300), default=["latest"], max_length=100
    )
    dry_run = serializers.BooleanField(default=True)
    fingerprint = serializers.CharField(
        required=False,
        max_length=64,
        help_text="The fingerprint of the dry run you checked: the run is refused (409) "
        "if the plan has changed since.",
    )

    def validate(self, attrs):
        try:
            attrs["rules"] = cleanup.CleanupRules(
                repository_pattern=attrs["repository_pattern"],
                tag_pattern=attrs["tag_pattern"],
                syntax=attrs["syntax"],
                older_than_days=attrs.get("older_than_days"),
                keep_newest=attrs.get("keep_newest"),
                protected=tuple(attrs["protected"]),
            )
        except cleanup.InvalidRule as error:
            raise serializers.ValidationError({"detail": str(error)}) from None
        return attrs


class PlannedDeletionSerializer(serializers.Serializer):
    digest = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    created = serializers.DateTimeField(allow_null=True)
    size_bytes = serializers.IntegerField()
    is_index = serializers.BooleanField()
    children = serializers.ListField(
        child=serializers.CharField(), help_text="Platform manifests deleted with an index."
    )


class HeldTagSerializer(serializers.Serializer):
    tag = serializers.CharField()
    digest = serializers.CharField()
    reason = serializers.CharField()


class RepositoryPlanSerializer(serializers.Serializer):
    name = serializers.CharField()
    deletions = PlannedDeletionSerializer(many=True)
    held = HeldTagSerializer(many=True)
    kept = serializers.IntegerField(help_text="Tags the rules keep.")
    bytes_freed = serializers.IntegerField()


class CleanupPlanSerializer(serializers.Serializer):
    """The dry run: every tag that would go, the tags held back, and the bytes freed."""

    dry_run = serializers.BooleanField(default=True)
    rules = serializers.SerializerMethodField()
    tag_count = serializers.IntegerField()
    held_count = serializers.IntegerField()
    bytes_freed = serializers.IntegerField(
        help_text="Blobs nothing kept shares: what garbage collection would give back."
    )
    fingerprint = serializers.CharField()
    repositories = RepositoryPlanSerializer(many=True)

    @extend_schema_field(serializers.DictField())
    def get_rules(self, plan):
        return self.context["rules"].as_params()
