"""Liveness and readiness for load balancers and orchestrators."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from regui.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2


@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


def _database_problem():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001  any failure means "not ready"; the reason is shown
        return f"database: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
    return None


def _broker_problem():
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return f"broker: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
    return None


@never_cache
@require_GET
def ready(request):
    problems = [p for p in (_database_problem(), _broker_problem()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})
