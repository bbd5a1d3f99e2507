"""The registry admin through the real admin views: write-only secrets, test connection,
notification secrets, memberships, and the audit trail of every change."""

import logging
import time

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from registries import connection
from registries.models import Manifest, Membership, Registry, Repository, Role, Tag

SECRET = "hunter2-registry-token-6b0f"
ADD_URL = reverse("admin:registries_registry_add")
CHANGELIST_URL = reverse("admin:registries_registry_changelist")


def change_url(registry):
    return reverse("admin:registries_registry_change", args=[registry.pk])


def form_data(memberships=(), initial_memberships=0, **overrides):
    """A complete POST of the registry form, with `memberships` as inline rows."""
    data = {
        "name": "team",
        "url": "http://team-registry.invalid",
        "verify_tls": "on",
        "ca_bundle": "",
        "username": "",
        "secret": "",
        "catalog_mode": Registry.CatalogMode.CATALOG,
        "repository_list": "",
        "sync_interval_minutes": "15",
        "max_concurrency": "64",
        "rescan_limit": "20",
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(initial_memberships),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(memberships):
        data.update({f"memberships-{index}-{key}": value for key, value in row.items()})
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def make_registry(name="team", url="http://team-registry.invalid", username="", secret=""):
    registry = Registry(name=name, url=url, username=username)
    registry.secret = secret
    registry.save()
    return registry


def messages_of(response):
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


@pytest.fixture
def admin_session(root):
    """The superuser signed in (alone: the other personas are not created here)."""
    client = Client()
    client.force_login(root)
    return client


# Write-only secret


def test_adding_a_registry_encrypts_the_secret_and_audits_it(admin_session, root):
    response = admin_session.post(ADD_URL, form_data(username="robot", secret=SECRET))

    assert response.status_code == 302, response.content
    registry = Registry.objects.get(name="team")
    assert registry.secret == SECRET
    assert SECRET not in registry.secret_ciphertext
    [event] = events("registry.created")
    assert (event.actor, event.registry, event.target) == (root, registry, "team")
    assert SECRET not in str(event.params) + event.message


def test_the_change_page_never_shows_the_secret(admin_session):
    registry = make_registry(username="robot", secret=SECRET)

    html = admin_session.get(change_url(registry)).content.decode()

    assert SECRET not in html
    assert registry.secret_ciphertext not in html
    assert 'name="secret"' in html
    assert "Set. Leave blank to keep it" in html


def test_the_add_page_says_not_set(admin_session):
    assert "Not set." in admin_session.get(ADD_URL).content.decode()


def test_a_blank_secret_keeps_the_stored_one(admin_session):
    registry = make_registry(username="robot", secret=SECRET)
    ciphertext = registry.secret_ciphertext

    response = admin_session.post(
        change_url(registry), form_data(username="robot", sync_interval_minutes="30")
    )

    assert response.status_code == 302, response.content
    registry.refresh_from_db()
    assert registry.secret_ciphertext == ciphertext
    assert registry.sync_interval_minutes == 30
    [event] = events("registry.changed")
    assert event.params == {"changed": ["sync_interval_minutes"]}


def test_a_new_secret_replaces_the_old_one_and_is_audited_by_name_only(admin_session):
    registry = make_registry(username="robot", secret="old-secret")

    response = admin_session.post(change_url(registry), form_data(username="robot", secret=SECRET))

    assert response.status_code == 302, response.content
    registry.refresh_from_db()
    assert registry.secret == SECRET
    [event] = events("registry.changed")
    assert event.params == {"changed": ["secret"]}
    assert "old-secret" not in str(event.params) + event.message
    history = admin_session.get(reverse("admin:registries_registry_history", args=[registry.pk]))
    assert "Password or token" in history.content.decode()
    assert SECRET not in history.content.decode()


def test_clearing_the_secret(admin_session):
    registry = make_registry(username="robot", secret=SECRET)

    response = admin_session.post(change_url(registry), form_data(clear_secret="on"))

    assert response.status_code == 302, response.content
    registry.refresh_from_db()
    assert not registry.has_secret
    [event] = events("registry.changed")
    assert event.params == {"changed": ["username", "secret"]}


def test_a_rejected_form_does_not_echo_the_typed_secret(admin_session):
    registry = make_registry(username="robot", secret="old-secret")

    response = admin_session.post(
        change_url(registry), form_data(username="robot", secret=SECRET, clear_secret="on")
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Either type a new secret or clear it, not both." in html
    assert SECRET not in html
    registry.refresh_from_db()
    assert registry.secret == "old-secret"
    assert not events("registry.changed")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"catalog_mode": "list"}, "List at least one repository"),
        ({"ca_bundle": "not a certificate"}, "Not a PEM certificate bundle"),
        ({"url": "ftp://example.com"}, "A registry URL starts with https:// or http://."),
        ({"url": "not a url"}, "Enter a valid URL"),
    ],
)
def test_bad_settings_are_form_errors_and_change_nothing(admin_session, overrides, error):
    response = admin_session.post(ADD_URL, form_data(**overrides))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Registry.objects.exists()


def test_deleting_a_registry_is_audited(admin_session, root):
    registry = make_registry()

    response = admin_session.post(
        reverse("admin:registries_registry_delete", args=[registry.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Registry.objects.exists()
    [event] = events("registry.deleted")
    assert (event.actor, event.registry, event.registry_name) == (root, None, "team")


def test_the_changelist_shows_health_badges(admin_session):
    make_registry()

    html = admin_session.get(CHANGELIST_URL).content.decode()

    assert "Unknown</span>" in html


# Test connection against real registries


def test_connection_to_an_open_registry(admin_session, registry, caplog):
    row = make_registry(url=registry.url)

    with caplog.at_level(logging.DEBUG):
        response = admin_session.post(
            CHANGELIST_URL, {"action": "test_connection", "_selected_action": [row.pk]}
        )

    assert response.status_code == 302
    [(level, text)] = messages_of(response)
    assert level == "success"
    assert "Authentication: none" in text
    assert "Catalog readable" in text
    assert "Deletes: enabled" in text
    row.refresh_from_db()
    assert (row.health, row.auth_scheme, row.delete_enabled) == ("ok", "none", True)
    assert row.health_checked_at is not None
    [event] = events("registry.connection_tested")
    assert event.result == AuditEvent.Result.OK


def test_connection_with_the_right_password(admin_session, htpasswd_registry, caplog):
    row = make_registry(
        url=htpasswd_registry.url,
        username=htpasswd_registry.username,
        secret=htpasswd_registry.password,
    )

    with caplog.at_level(logging.DEBUG):
        response = admin_session.post(
            reverse("admin:registries_registry_test_connection", args=[row.pk])
        )

    assert response.status_code == 302
    assert response.url == change_url(row)
    [(level, text)] = messages_of(response)
    assert level == "success"
    assert "Authentication: basic" in text
    assert "Credentials accepted" in text
    row.refresh_from_db()
    assert (row.health, row.auth_scheme) == ("ok", "basic")
    assert htpasswd_registry.password not in caplog.text
    assert htpasswd_registry.password not in text


def test_connection_with_a_wrong_password(admin_session, htpasswd_registry, caplog):
    row = make_registry(url=htpasswd_registry.url, username="alice", secret=SECRET)

    with caplog.at_level(logging.DEBUG):
        response = admin_session.post(
            reverse("admin:registries_registry_test_connection", args=[row.pk])
        )

    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "Credentials rejected" in text
    assert "401" in text
    assert "authentication required" in text  # the registry's own words
    row.refresh_from_db()
    assert row.health == "error"
    assert "Credentials rejected" in row.health_message
    assert SECRET not in caplog.text + text + row.health_message
    [event] = events("registry.connection_tested")
    assert event.result == AuditEvent.Result.FAILED
    assert SECRET not in event.message


def test_connection_with_bearer_tokens(admin_session, token_registry):
    row = make_registry(
        url=token_registry.url, username=token_registry.username, secret=token_registry.password
    )

    response = admin_session.post(
        CHANGELIST_URL, {"action": "test_connection", "_selected_action": [row.pk]}
    )

    [(level, text)] = messages_of(response)
    assert "Authentication: bearer" in text
    assert "Credentials accepted" in text
    assert level == "success", text
    row.refresh_from_db()
    assert (row.health, row.auth_scheme) == ("ok", "bearer")


def test_connection_to_a_stopped_registry_fails_fast(admin_session, registry_factory):
    server = registry_factory()
    server.stop()
    row = make_registry(url=server.url)

    started = time.monotonic()
    response = admin_session.post(
        CHANGELIST_URL, {"action": "test_connection", "_selected_action": [row.pk]}
    )
    elapsed = time.monotonic() - started

    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "cannot connect" in text
    assert elapsed < 5
    row.refresh_from_db()
    assert row.health == "error"
    assert "cannot connect" in row.health_message


def test_connection_to_a_registry_that_never_answers_times_out(
    admin_session, fault_proxy, monkeypatch
):
    monkeypatch.setattr(connection, "PROBE_READ_TIMEOUT_SECONDS", 1.0)
    fault_proxy.hang(seconds=10, path=r"^/v2/$")
    row = make_registry(url=fault_proxy.url)

    started = time.monotonic()
    response = admin_session.post(
        reverse("admin:registries_registry_test_connection", args=[row.pk])
    )

    assert time.monotonic() - started < 5
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "did not answer within 1 s" in text


def test_connection_with_an_undecryptable_secret_says_so(admin_session, registry):
    with override_settings(REGUI_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        row = make_registry(url=registry.url, username="robot", secret=SECRET)

    response = admin_session.post(
        reverse("admin:registries_registry_test_connection", args=[row.pk])
    )

    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "cannot be decrypted with any key of REGUI_ENCRYPTION_KEYS" in text
    row.refresh_from_db()
    assert row.health == "error"


def test_the_change_page_offers_the_buttons(admin_session):
    row = make_registry()

    html = admin_session.get(change_url(row)).content.decode()

    assert reverse("admin:registries_registry_test_connection", args=[row.pk]) in html
    assert reverse("admin:registries_registry_notification_secret", args=[row.pk]) in html


def test_the_buttons_need_a_post(admin_session):
    row = make_registry()

    url = reverse("admin:registries_registry_test_connection", args=[row.pk])
    assert admin_session.get(url).status_code == 405


# Notification secret


def test_a_notification_secret_is_shown_once_and_stored_hashed(admin_session):
    row = make_registry()

    response = admin_session.post(
        reverse("admin:registries_registry_notification_secret", args=[row.pk]), follow=True
    )

    [message] = response.context["messages"]
    value = message.message.split(": ", 1)[1].split(" ", 1)[0]
    assert len(value) >= 40
    assert value in response.content.decode()  # the page after the button shows it once
    row.refresh_from_db()
    assert value not in row.notification_secret_hash
    assert row.check_notification_secret(value)
    again = admin_session.get(change_url(row)).content.decode()
    assert value not in again
    assert "Set (shown only when generated)" in again
    [event] = events("registry.notification_secret_generated")
    assert value not in str(event.params) + event.message


# Memberships


def test_memberships_added_changed_and_removed_inline_are_audited(admin_session, django_user_model):
    carol = django_user_model.objects.create_user("carol")
    row = make_registry()

    admin_session.post(
        change_url(row), form_data(memberships=[{"user": carol.pk, "role": Role.VIEWER}])
    )
    membership = Membership.objects.get(registry=row, user=carol)
    existing = {"id": membership.pk, "registry": row.pk, "user": carol.pk}
    admin_session.post(
        change_url(row),
        form_data(memberships=[{**existing, "role": Role.OPERATOR}], initial_memberships=1),
    )
    admin_session.post(
        change_url(row),
        form_data(
            memberships=[{**existing, "role": Role.OPERATOR, "DELETE": "on"}],
            initial_memberships=1,
        ),
    )

    assert not Membership.objects.exists()
    added, changed, removed = (
        events("membership.added"),
        events("membership.changed"),
        events("membership.removed"),
    )
    assert [(event.target, event.params) for event in added] == [("user carol", {"role": "viewer"})]
    assert [(event.target, event.params) for event in changed] == [
        ("user carol", {"role": "operator", "changed": ["role"]})
    ]
    assert [event.target for event in removed] == ["user carol"]
    assert {event.registry for event in added + changed + removed} == {row}


def test_a_membership_needs_exactly_one_of_user_and_group(admin_session, django_user_model):
    row = make_registry()

    response = admin_session.post(
        reverse("admin:registries_membership_add"), {"registry": row.pk, "role": Role.VIEWER}
    )

    assert response.status_code == 200
    assert "Choose a user or a group: exactly one of them." in response.content.decode()
    assert not Membership.objects.exists()


def test_standalone_membership_admin_audits_too(admin_session, django_user_model):
    carol = django_user_model.objects.create_user("carol")
    row = make_registry()

    admin_session.post(
        reverse("admin:registries_membership_add"),
        {"registry": row.pk, "user": carol.pk, "role": Role.ADMIN},
    )
    membership = Membership.objects.get()
    admin_session.post(
        reverse("admin:registries_membership_delete", args=[membership.pk]), {"post": "yes"}
    )

    assert [event.params for event in events("membership.added")] == [{"role": "admin"}]
    assert [event.target for event in events("membership.removed")] == ["user carol"]


# Who may use the registry admin


@pytest.fixture
def staff_alice(alice):
    """alice as staff with Django's registry permissions: the roles still decide which."""
    alice.is_staff = True
    alice.save()
    alice.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="registries",
            codename__in=["view_registry", "change_registry", "view_membership"],
        )
    )
    client = Client()
    client.force_login(alice)
    return client


def test_staff_see_only_the_registries_they_administer(staff_alice, registry_a, registry_b):
    html = staff_alice.get(CHANGELIST_URL).content.decode()

    assert "registry-a" in html
    assert "registry-b" not in html
    assert staff_alice.get(change_url(registry_a)).status_code == 200
    assert staff_alice.get(change_url(registry_b)).status_code == 302  # "does not exist"
    test_b = reverse("admin:registries_registry_test_connection", args=[registry_b.pk])
    assert staff_alice.post(test_b).status_code == 404


def test_non_staff_cannot_open_the_admin(client_for, registry_a):
    response = client_for("alice").get(change_url(registry_a))

    assert response.status_code == 302
    assert "/admin/login/" in response.url


# The audit trail in the admin


def test_audit_events_are_read_only_in_the_admin(admin_session, root):
    event = AuditEvent.objects.create(action="registry.created", actor=root, target="x")

    changelist = reverse("admin:audit_auditevent_changelist")
    AuditEvent.objects.create(action="login.failed", target="mallory", result="failed")
    found = admin_session.get(changelist, {"q": "mallory", "result__exact": "failed"})
    assert found.status_code == 200
    assert list(found.context["cl"].result_list) == [AuditEvent.objects.get(target="mallory")]
    assert admin_session.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = admin_session.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert admin_session.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize("way", ["delete view", "bulk action"])
def test_deleting_a_registry_with_cached_tags(admin_session, root, way):
    row = make_registry()
    manifest = Manifest.objects.create(registry=row, digest="sha256:" + "a" * 64, media_type="x")
    repository = Repository.objects.create(registry=row, name="app")
    Tag.objects.create(repository=repository, name="latest", manifest=manifest)
    if way == "delete view":
        url = reverse("admin:registries_registry_delete", args=[row.pk])
        confirm, delete = {}, {"post": "yes"}
    else:
        url = CHANGELIST_URL
        confirm = {"action": "delete_selected", "_selected_action": [row.pk]}
        delete = {**confirm, "post": "yes"}

    confirmation = admin_session.post(url, confirm) if confirm else admin_session.get(url)
    response = admin_session.post(url, delete)

    summary = " ".join(confirmation.content.decode().split())
    assert "Cached tags: 1" in summary
    assert "Cached manifests: 1" in summary
    assert response.status_code == 302
    assert not Registry.objects.exists()
    assert not Tag.objects.exists()
    [event] = events("registry.deleted")
    assert (event.actor, event.registry_name) == (root, "team")
