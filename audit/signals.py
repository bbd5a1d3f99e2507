"""Audit events for sign-ins and sign-outs, from Django's and django-axes' signals."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.log import record
from audit.models import AuditEvent


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs):
    record("login.succeeded", request=request, actor=user, target=user.get_username())


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs):
    if user is not None:
        record("logout", request=request, actor=user, target=user.get_username())


@receiver(user_login_failed)
def record_login_failure(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; only the username is kept.
    record(
        "login.failed",
        request=request,
        target=credentials.get("username", ""),
        result=AuditEvent.Result.FAILED,
    )


@receiver(user_locked_out)
def record_lockout(sender, request, username, ip_address, **kwargs):
    record(
        "login.locked_out",
        request=request,
        target=username or "",
        result=AuditEvent.Result.DENIED,
        message="too many failed sign-ins in a row; the account is locked for a while",
    )
