from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiToken
from registries.models import Role


class RegistryRoleSerializer(serializers.Serializer):
    registry = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class CurrentTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["name", "prefix", "read_only", "expires_at", "created_at"]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_superuser = serializers.BooleanField()
    registries = RegistryRoleSerializer(many=True)
    token = serializers.SerializerMethodField(help_text="The API token of this request, if any.")

    @extend_schema_field(CurrentTokenSerializer(allow_null=True))
    def get_token(self, user):
        token = self.context.get("token")
        return CurrentTokenSerializer(token).data if token is not None else None
