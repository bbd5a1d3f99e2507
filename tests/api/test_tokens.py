"""API tokens: issued once, stored hashed, expiring, read-only, and managed by their owner."""

import datetime as dt
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.api.conftest import bearer_client

pytestmark = pytest.mark.django_db


def issue_from_command(*args):
    out = StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip()


def test_issue_token_prints_a_working_token(alice):
    value = issue_from_command("alice", "--expires-days", "7")

    assert value.startswith("regui_") and len(value) > 40
    answer = bearer_client(value).get("/api/v1/me/")
    assert answer.status_code == 200
    assert answer.json()["username"] == "alice"
    assert answer.json()["token"]["read_only"] is False
    token = ApiToken.objects.get()
    assert dt.timedelta(days=6) < token.expires_at - timezone.now() <= dt.timedelta(days=7)


def test_issue_token_for_an_unknown_user_is_one_readable_error(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        issue_from_command("nobody")


def test_the_database_holds_no_usable_token(alice):
    value = issue_from_command("alice")

    # No column of any row holds the token: search every table's text for it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM accounts_apitoken t")
        rows = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(a)::text FROM audit_auditevent a")
        rows += [row[0] for row in cursor.fetchall()]
    assert rows and not any(value in row or value[6:] in row for row in rows)
    # What is stored (hash, prefix) does not authenticate.
    token = ApiToken.objects.get()
    for stored in (token.token_hash, token.prefix, f"regui_{token.token_hash}"):
        assert bearer_client(stored).get("/api/v1/me/").status_code == 401


def test_an_expired_token_is_refused_with_401(alice):
    token, value = tokens.issue(alice, name="ci", expires_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())

    answer = bearer_client(value).get("/api/v1/registries/")

    assert answer.status_code == 401
    assert answer.json() == {"detail": "This API token has expired."}
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_a_malformed_or_unknown_token_is_refused_with_401(db):
    assert bearer_client("regui_not-a-real-token").get("/api/v1/me/").status_code == 401
    assert bearer_client("something-else").get("/api/v1/me/").status_code == 401


def test_a_read_only_token_reads_but_cannot_delete(alice, registry_a):
    _, value = tokens.issue(alice, name="dashboards", read_only=True)
    client = bearer_client(value)

    assert client.get(f"/api/v1/registries/{registry_a.pk}/").status_code == 200
    answer = client.delete(f"/api/v1/registries/{registry_a.pk}/")

    assert answer.status_code == 403
    assert answer.json() == {"detail": "This API token is read-only."}
    registry_a.refresh_from_db()  # still there


def test_last_used_is_recorded_but_written_at_most_once_a_minute(alice):
    token, value = tokens.issue(alice, name="ci")
    client = bearer_client(value)
    assert token.last_used_at is None

    client.get("/api/v1/me/")
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None

    client.get("/api/v1/me/")
    token.refresh_from_db()
    assert token.last_used_at == first_use

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - dt.timedelta(minutes=2))
    client.get("/api/v1/me/")
    token.refresh_from_db()
    assert token.last_used_at > first_use - dt.timedelta(minutes=2)


def test_an_inactive_users_token_is_refused(alice):
    _, value = tokens.issue(alice, name="ci")
    alice.is_active = False
    alice.save()

    assert bearer_client(value).get("/api/v1/me/").status_code == 401


def test_tokens_page_shows_a_new_token_once_and_revokes(client_for, alice, mallory):
    client = client_for("alice")

    created = client.post("/accounts/tokens/", {"name": "ci", "expires_days": "30"})

    assert created.status_code == 200
    value = created.context["new_token"]
    assert value.startswith("regui_") and value in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    listing = client.get("/accounts/tokens/").content.decode()
    assert "ci" in listing and value not in listing
    token = ApiToken.objects.get(user=alice)
    assert token.expires_at is not None

    # Someone else's token is not found, and stays.
    assert client_for("mallory").post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert not ApiToken.objects.exists()
    assert bearer_client(value).get("/api/v1/me/").status_code == 401
    actions = list(
        AuditEvent.objects.filter(action__startswith="token.")
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert actions == [("token.issue", "alice"), ("token.revoke", "alice")]


def test_tokens_page_needs_a_sign_in(client):
    answer = client.get("/accounts/tokens/")
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_anonymous_clients_are_throttled(client, settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "token": "1000/min"},
    }
    # The schema is the public endpoint (and the costly one). On every other endpoint an
    # anonymous call is refused with 401 before throttles are checked, as DRF orders them.
    codes = [client.get("/api/schema/").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    cache.clear()


def test_token_clients_are_throttled_per_token(alice, settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000/min", "token": "2/min"},
    }
    _, first = tokens.issue(alice, name="one")
    _, second = tokens.issue(alice, name="two")

    codes = [bearer_client(first).get("/api/v1/me/").status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    assert bearer_client(second).get("/api/v1/me/").status_code == 200
    cache.clear()


def test_a_superuser_revokes_a_leaked_token_in_the_admin(client_for, alice, root):
    token, value = tokens.issue(alice, name="leaked")
    client = client_for("root")

    listing = client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200 and "leaked" in listing.content.decode()
    assert value not in listing.content.decode()
    answer = client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})

    assert answer.status_code == 302
    assert bearer_client(value).get("/api/v1/me/").status_code == 401
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.actor_name == "root" and "alice" in event.target


def test_issue_token_read_only_flag(alice, registry_a):
    value = issue_from_command("alice", "--read-only")
    client = bearer_client(value)

    assert client.get("/api/v1/me/").json()["token"]["read_only"] is True
    assert client.post(f"/api/v1/registries/{registry_a.pk}/sync/").status_code == 403
    assert ApiToken.objects.get().expires_at is None
