"""The audit log page: who reads which events, and the filters it shares with the API."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent

AUDIT_URL = "/audit/"


@pytest.fixture
def events(registry_a, registry_b):
    """One event in A, one in B, one of the portal itself."""
    return {
        "a": AuditEvent.objects.create(action="tag.deleted", registry=registry_a, actor_name="bob"),
        "b": AuditEvent.objects.create(
            action="registry.sync", registry=registry_b, actor_name="mallory"
        ),
        "portal": AuditEvent.objects.create(action="user.created", actor_name="eve"),
    }


def shown_events(response):
    """Ids of the events in the page's table (signing in adds events of its own)."""
    html = response.content.decode()
    shown = {int(chunk.split('"')[0]) for chunk in html.split('data-event="')[1:]}
    return shown - set(
        AuditEvent.objects.filter(action__startswith="login.").values_list("pk", flat=True)
    )


# Who sees which events: registry admins their registries', superusers everything, others none.
PERSONA_TABLE = [
    ("root", 200, {"a", "b", "portal"}),
    ("alice", 200, {"a"}),
    ("bob", 403, set()),
    ("carol", 403, set()),
    ("dave", 403, set()),
    ("mallory", 403, set()),
]


@pytest.mark.parametrize(("persona", "status", "visible"), PERSONA_TABLE)
def test_who_sees_which_events(client_for, personas, events, persona, status, visible):
    response = client_for(persona).get(AUDIT_URL)

    assert response.status_code == status
    assert shown_events(response) == {events[name].pk for name in visible}
    if status == 403:
        assert b"The audit log is for registry admins" in response.content


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(AUDIT_URL)

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


@pytest.mark.parametrize(("persona", "has_link"), [("root", True), ("alice", True), ("bob", False)])
def test_the_navigation_links_the_log_for_registry_admins(client_for, personas, persona, has_link):
    page = client_for(persona).get("/jobs/").content

    assert (b'href="/audit/"' in page) is has_link


def test_a_group_admin_reads_the_events_of_the_group_registry(
    client_for, personas, events, registry_b
):
    from django.contrib.auth.models import Group

    from registries.models import Membership, Role

    admins = Group.objects.create(name="b-admins")
    personas["mallory"].groups.add(admins)
    Membership.objects.create(registry=registry_b, group=admins, role=Role.ADMIN)

    response = client_for("mallory").get(AUDIT_URL)

    assert shown_events(response) == {events["b"].pk}


@pytest.fixture
def history(registry_a):
    """Events of alice and bob in A, spread over three days."""
    now = timezone.now()
    rows = {}
    for days_ago, actor, action in [
        (2, "alice", "member.added"),
        (1, "bob", "tag.deleted"),
        (0, "bob", "registry.sync"),
    ]:
        event = AuditEvent.objects.create(action=action, registry=registry_a, actor_name=actor)
        AuditEvent.objects.filter(pk=event.pk).update(at=now - dt.timedelta(days=days_ago))
        rows[action] = event
    return rows


def local_time(days_ago):
    moment = timezone.localtime(timezone.now() - dt.timedelta(days=days_ago))
    return moment.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "bob"}, {"tag.deleted", "registry.sync"}),
        ({"action": "tag.deleted"}, {"tag.deleted"}),
        ({"action": "registry."}, {"registry.sync"}),
        ({"since": local_time(1.5)}, {"tag.deleted", "registry.sync"}),
        ({"until": local_time(0.5)}, {"member.added", "tag.deleted"}),
        ({"since": local_time(2.5), "until": local_time(0.5), "actor": "bob"}, {"tag.deleted"}),
    ],
)
def test_filters(client_for, alice, history, query, expected):
    response = client_for("alice").get(AUDIT_URL, query)

    assert shown_events(response) == {history[action].pk for action in expected}


def test_the_registry_filter(client_for, root, events, registry_b):
    response = client_for("root").get(AUDIT_URL, {"registry": registry_b.pk})

    assert shown_events(response) == {events["b"].pk}


def test_a_registry_admin_cannot_filter_their_way_into_another_registry(
    client_for, alice, events, registry_b
):
    response = client_for("alice").get(AUDIT_URL, {"registry": registry_b.pk})

    assert shown_events(response) == set()


@pytest.mark.parametrize("query", [{"since": "yesterday"}, {"registry": "abc"}])
def test_a_bad_filter_says_what_is_wrong_and_shows_nothing(client_for, root, events, query):
    response = client_for("root").get(AUDIT_URL, query)

    assert response.status_code == 200
    assert shown_events(response) == set()
    assert b"Enter a" in response.content


def test_the_table_alone_for_htmx(client_for, alice, events):
    response = client_for("alice").get(
        AUDIT_URL, {"actor": "bob"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-table"
    )

    assert response.content.lstrip().startswith(b'<div id="audit-table"')
    assert shown_events(response) == {events["a"].pk}


@pytest.mark.parametrize(("persona", "status", "visible"), PERSONA_TABLE)
def test_the_api_answers_the_same_table(client_for, personas, events, persona, status, visible):
    from rest_framework.test import APIClient

    answer = client_for(persona, client_class=APIClient).get("/api/v1/audit/")

    assert answer.status_code == status
    if status == 403:
        assert answer.json() == {"detail": "The audit log is for registry admins."}
        return
    shown = {event["id"] for event in answer.json()["results"]}
    assert shown & {event.pk for event in events.values()} == {events[n].pk for n in visible}
