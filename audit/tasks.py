from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent


@shared_task(ignore_result=True)
def prune_audit_events():
    """Delete audit events past REGUI_AUDIT_RETENTION_DAYS (0 keeps everything)."""
    days = settings.REGUI_AUDIT_RETENTION_DAYS
    if not days:
        return 0
    deleted, _ = AuditEvent.objects.filter(at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
