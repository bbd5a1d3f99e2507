"""API-wide DRF pieces named in settings.REST_FRAMEWORK: errors, pages, throttles."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination, throttling
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.models import ApiToken


def exception_handler(exc, context):
    """DRF's handler, with every error body a dict: `{"detail": ...}` or field errors."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, IntegrityError):
        # A unique constraint raced past a serializer's check; nothing was written.
        exc = exceptions.ValidationError({"detail": "This conflicts with an existing object."})
    response = drf_exception_handler(exc, context)
    if response is not None and not isinstance(response.data, dict):
        messages = response.data if isinstance(response.data, list) else [response.data]
        response.data = {"detail": " ".join(str(message) for message in messages)}
    return response


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _SettingsRateThrottle(throttling.SimpleRateThrottle):
    # DRF binds THROTTLE_RATES when the class is defined; reading them per request lets
    # deployments and tests change them through settings.
    def get_rate(self):
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(self.scope)


class AnonThrottle(_SettingsRateThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenThrottle(_SettingsRateThrottle):
    """Limits each API token; browser sessions are not throttled."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


@csrf_exempt  # it changes nothing, and a CSRF 403 page would hide the JSON 404
def api_not_found(request, path=""):
    """JSON, like every other API answer, for a path under /api/ that matches no endpoint.

    This catch-all also stops APPEND_SLASH redirects under /api/, so a missing slash is named.
    """
    detail = "No such API endpoint."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail += f" Did you mean {request.path}/ (with the slash)?"
    return JsonResponse({"detail": detail}, status=404)
