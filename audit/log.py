"""The one helper that writes audit events."""

from audit.models import AuditEvent


def client_ip(request):
    # Behind a proxy, Django's REMOTE_ADDR is set by the proxy-aware server (gunicorn
    # --forwarded-allow-ips); X-Forwarded-For is not trusted here because clients forge it.
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    action,
    *,
    request=None,
    actor=None,
    registry=None,
    target="",
    params=None,
    result=AuditEvent.Result.OK,
    message="",
):
    if actor is None and request is not None:
        # Requests that skipped the auth middleware (or an anonymous visitor) have no actor.
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "",
        registry=registry,
        registry_name=registry.name if registry is not None else "",
        target=str(target)[:500],
        params=params or {},
        result=result,
        message=message,
        ip=client_ip(request),
    )
