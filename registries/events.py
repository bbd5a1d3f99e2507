"""The receiver of distribution's notifications: push and delete events update the cache at once.

The registry authenticates with the per-registry secret, sent as `Authorization: Bearer <secret>`
or `X-RegUI-Secret: <secret>` (both set under `notifications.endpoints[].headers`).
"""

import json
import logging

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registries import sync
from registries.client import RegistryError
from registries.models import Registry

logger = logging.getLogger(__name__)

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


def presented_secret(request):
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-RegUI-Secret", "").strip()


@csrf_exempt
@require_POST
def registry_events(request, registry_id):
    registry = get_object_or_404(Registry, pk=registry_id)
    if not registry.check_notification_secret(presented_secret(request)):
        return JsonResponse({"detail": "Missing or wrong notification secret."}, status=401)
    if request.content_type not in (ENVELOPE_MEDIA_TYPE, "application/json"):
        return JsonResponse(
            {"detail": f"Expected {ENVELOPE_MEDIA_TYPE}, got {request.content_type!r}."},
            status=415,
        )
    try:
        envelope = json.loads(request.body)
        result = sync.apply_notification(registry, envelope)
    except ValueError as error:  # bad JSON, or sync.BadEnvelope
        return JsonResponse({"detail": f"Malformed notification: {error}"}, status=400)
    except RegistryError as error:
        # distribution queues the events and sends them again: a later attempt may succeed.
        logger.warning("notification for %s not applied: %s", registry, error)
        return JsonResponse({"detail": f"Could not read the registry: {error}"}, status=503)
    return JsonResponse(result)
