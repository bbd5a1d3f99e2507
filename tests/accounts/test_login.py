"""Signing in and out: redirects, lockout after repeated failures, and the audit trail."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from regui import settings as production_settings
from tests.support.personas import PERSONA_PASSWORD

LOGIN_URL = reverse("login")
CLIENT_IP = "203.0.113.7"


@pytest.fixture
def visitor():
    """A signed-out client that connects from CLIENT_IP."""
    return Client(REMOTE_ADDR=CLIENT_IP)


def sign_in(client, username, password, **params):
    return client.post(LOGIN_URL, {"username": username, "password": password, **params})


def signed_in_as(client):
    return client.session.get(SESSION_KEY)


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_the_login_page_renders(visitor, db):
    response = visitor.get(LOGIN_URL)

    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'type="password"' in response.content
    assert response.templates[0].name == "registration/login.html"


def test_signing_in_redirects_home_and_is_audited_with_the_ip(visitor, carol):
    response = sign_in(visitor, "carol", PERSONA_PASSWORD)

    assert response.status_code == 302
    assert response.url == "/"
    assert signed_in_as(visitor) == str(carol.pk)
    [event] = events("login.succeeded")
    assert (event.actor, event.target, event.ip) == (carol, "carol", CLIENT_IP)


def test_a_wrong_password_shows_the_form_again_and_is_audited(visitor, carol):
    response = sign_in(visitor, "carol", "wrong")

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert signed_in_as(visitor) is None
    [event] = events("login.failed")
    assert (event.actor, event.target, event.ip) == (None, "carol", CLIENT_IP)
    assert event.result == AuditEvent.Result.FAILED
    assert "wrong" not in str(event.params) + event.message


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/admin/", "/admin/"),
        ("/some/page/?tab=2", "/some/page/?tab=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("http://testserver.evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_redirects_only_to_this_site(visitor, carol, next_url, expected):
    response = sign_in(visitor, "carol", PERSONA_PASSWORD, next=next_url)

    assert response.status_code == 302
    assert response.url == expected


def test_the_login_form_carries_next_along(visitor, db):
    response = visitor.get(LOGIN_URL, {"next": "/admin/"})

    assert b'name="next" value="/admin/"' in response.content


def test_logout_needs_a_post(client_for, carol):
    client = client_for("carol")

    assert client.get(reverse("logout")).status_code == 405
    assert signed_in_as(client) == str(carol.pk)


def test_logout_signs_out_and_is_audited(carol):
    client = Client(REMOTE_ADDR=CLIENT_IP)
    client.force_login(carol)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response.url == LOGIN_URL
    assert signed_in_as(client) is None
    [event] = events("logout")
    assert (event.actor, event.ip) == (carol, CLIENT_IP)


def test_the_sixth_attempt_after_five_wrong_passwords_is_locked_out(visitor, carol):
    responses = [sign_in(visitor, "carol", f"guess-{n}") for n in range(1, 6)]

    # Four ordinary failures; the fifth failure locks the account and says so.
    assert [response.status_code for response in responses] == [200, 200, 200, 200, 429]
    locked = sign_in(visitor, "carol", PERSONA_PASSWORD)  # the right password, too late

    assert locked.status_code == 429
    assert signed_in_as(visitor) is None
    text = " ".join(locked.content.decode().split())
    assert "Too many failed attempts; try again in 15 minutes." in text
    assert "registration/locked_out.html" in [template.name for template in locked.templates]

    failures = events("login.failed")
    assert len(failures) == 6
    assert {(event.target, event.ip) for event in failures} == {("carol", CLIENT_IP)}
    lockouts = events("login.locked_out")
    assert lockouts
    assert {(event.target, event.ip, event.result) for event in lockouts} == {
        ("carol", CLIENT_IP, AuditEvent.Result.DENIED)
    }
    assert not events("login.succeeded")


def test_the_lock_is_per_account_not_per_address(visitor, carol, bob):
    for n in range(5):
        sign_in(visitor, "carol", f"guess-{n}")

    assert sign_in(Client(REMOTE_ADDR="198.51.100.1"), "carol", PERSONA_PASSWORD).status_code == 429
    assert sign_in(visitor, "bob", PERSONA_PASSWORD).status_code == 302


def test_a_successful_sign_in_resets_the_count(visitor, carol):
    for n in range(4):
        sign_in(visitor, "carol", f"guess-{n}")
    assert sign_in(visitor, "carol", PERSONA_PASSWORD).status_code == 302
    visitor.logout()

    for n in range(4):
        assert sign_in(visitor, "carol", f"guess-again-{n}").status_code == 200
    assert sign_in(visitor, "carol", PERSONA_PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(visitor, carol):
    for n in range(5):
        sign_in(visitor, "carol", f"guess-{n}")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert sign_in(visitor, "carol", PERSONA_PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3, AXES_COOLOFF_TIME=timedelta(minutes=2))
def test_the_limit_and_the_lock_time_are_configurable(visitor, carol):
    statuses = [sign_in(visitor, "carol", f"guess-{n}").status_code for n in range(3)]

    assert statuses == [200, 200, 429]
    assert "try again in 2 minutes" in sign_in(visitor, "carol", PERSONA_PASSWORD).content.decode()


def test_passwords_are_stored_with_argon2(visitor, django_user_model):
    with override_settings(PASSWORD_HASHERS=production_settings.PASSWORD_HASHERS):
        user = django_user_model.objects.create_user("erin", password=PERSONA_PASSWORD)

        assert user.password.startswith("argon2$")
        assert sign_in(visitor, "erin", PERSONA_PASSWORD).status_code == 302


def test_the_admin_login_is_locked_out_too(visitor, root):
    admin_login = reverse("admin:login")
    for n in range(5):
        visitor.post(admin_login, {"username": "root", "password": f"guess-{n}"})

    response = visitor.post(admin_login, {"username": "root", "password": PERSONA_PASSWORD})

    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert len(events("login.failed")) == 6
