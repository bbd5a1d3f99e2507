from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import MeSerializer
from accounts.models import ApiToken
from registries.models import Registry
from registries.permissions import roles_by_registry


class MeView(APIView):
    """Who the API thinks you are, and your role in each registry."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = request.user
        roles = roles_by_registry(user)
        names = dict(Registry.objects.filter(pk__in=roles).values_list("pk", "name"))
        registries = [
            {"registry": pk, "name": names[pk], "role": role}
            for pk, role in sorted(roles.items(), key=lambda item: names[item[0]])
        ]
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "is_superuser": user.is_superuser,
            "registries": registries,
        }
        return Response(MeSerializer(data, context={"token": token}).data)
