"""Issuing and checking API tokens (`Authorization: Bearer regui_…`).

A token is `regui_` followed by 43 URL-safe characters (256 random bits). Only its sha256 is
stored: the secret is too long to guess, so a slow password hash would only cost time on
every request.
"""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from audit import log

# bandit B105: a public marker that makes tokens recognisable, not a secret.
TOKEN_PREFIX = "regui_"  # noqa: S105  # nosec B105
PREFIX_SHOWN = len(TOKEN_PREFIX) + 8
# last_used_at is written at most this often per token, so a busy CI job costs no write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidToken(Exception):
    """The token is unknown, malformed or expired; the message is safe to show."""


def hash_token(value):
    return hashlib.sha256(value.encode()).hexdigest()


def issue(user, *, name, read_only=False, expires_days=None, request=None):
    """Create a token for the user; returns (ApiToken, the token text shown only now)."""
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=value[:PREFIX_SHOWN],
            token_hash=hash_token(value),
            read_only=read_only,
            expires_at=expires_at,
        )
        log.record(
            "token.issue",
            request=request,
            actor=request.user if request is not None else user,
            target=f"{user.get_username()}: {token}",
            params={"read_only": read_only, "expires_days": expires_days},
        )
    return token, value


def revoke(token, *, request=None):
    with transaction.atomic():
        log.record(
            "token.revoke",
            request=request,
            actor=request.user if request is not None else token.user,
            target=f"{token.user.get_username()}: {token}",
        )
        token.delete()


def verify(value):
    """The ApiToken for the text of a token, or InvalidToken; records the time of use."""
    if not value.startswith(TOKEN_PREFIX):
        raise InvalidToken("Malformed API token.")
    try:
        token = ApiToken.objects.select_related("user").get(token_hash=hash_token(value))
    except ApiToken.DoesNotExist:
        raise InvalidToken("Invalid API token.") from None
    if token.is_expired:
        raise InvalidToken("This API token has expired.")
    if not token.user.is_active:
        raise InvalidToken("The token's user is inactive.")
    _touch(token)
    return token


def _touch(token):
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
