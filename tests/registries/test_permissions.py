"""The permission module against every persona and every action, from one table."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from registries.models import Membership, Role
from registries.permissions import (
    Action,
    can,
    check,
    get_registry,
    roles_by_registry,
    visible_registries,
)

# What each persona gets for each action on registry A and on registry B:
# ok = allowed, 403 = sees the registry but the role is too low, 404 = the registry is hidden.
MATRIX = """
persona    reg  view sync scan delete_tag cleanup change_registry manage_members
alice      A    ok   ok   ok   ok         ok      ok              ok
alice      B    404  404  404  404        404     404             404
bob        A    ok   ok   ok   ok         403     403             403
bob        B    404  404  404  404        404     404             404
carol      A    ok   403  403  403        403     403             403
carol      B    404  404  404  404        404     404             404
dave       A    ok   403  403  403        403     403             403
dave       B    404  404  404  404        404     404             404
mallory    A    404  404  404  404        404     404             404
mallory    B    ok   403  403  403        403     403             403
root       A    ok   ok   ok   ok         ok      ok              ok
root       B    ok   ok   ok   ok         ok      ok              ok
anonymous  A    404  404  404  404        404     404             404
anonymous  B    404  404  404  404        404     404             404
"""


def parse_matrix(text):
    header, *rows = (line.split() for line in text.strip().splitlines())
    actions = [Action(name) for name in header[2:]]
    return actions, [
        (persona, registry, action, outcome)
        for persona, registry, *outcomes in rows
        for action, outcome in zip(actions, outcomes, strict=True)
    ]


MATRIX_ACTIONS, MATRIX_CASES = parse_matrix(MATRIX)


def test_the_matrix_covers_every_action_and_persona():
    assert set(MATRIX_ACTIONS) == set(Action)
    personas_in_table = {persona for persona, *_ in MATRIX_CASES}
    assert personas_in_table == {"alice", "bob", "carol", "dave", "mallory", "root", "anonymous"}


@pytest.fixture
def registries(registry_a, registry_b):
    return {"A": registry_a, "B": registry_b}


@pytest.mark.parametrize(("persona", "reg", "action", "outcome"), MATRIX_CASES)
def test_permission_matrix(personas, registries, persona, reg, action, outcome):
    user, registry = personas[persona], registries[reg]

    assert can(user, action, registry) is (outcome == "ok")
    if outcome == "ok":
        check(user, action, registry)
        assert get_registry(user, action, str(registry.pk)) == registry
    else:
        expected = Http404 if outcome == "404" else PermissionDenied
        with pytest.raises(expected):
            check(user, action, registry)
        with pytest.raises(expected):
            get_registry(user, action, str(registry.pk))


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("alice", {"registry-a"}),
        ("bob", {"registry-a"}),
        ("carol", {"registry-a"}),
        ("dave", {"registry-a"}),
        ("mallory", {"registry-b"}),
        ("root", {"registry-a", "registry-b"}),
        ("anonymous", set()),
    ],
)
def test_visible_registries(personas, persona, visible):
    user = personas[persona]

    assert {registry.name for registry in visible_registries(user)} == visible
    assert set(roles_by_registry(user)) == {registry.pk for registry in visible_registries(user)}


@pytest.mark.parametrize(("persona", "reg", "action", "outcome"), MATRIX_CASES)
def test_visible_registries_per_action_agree_with_the_matrix(
    personas, registries, persona, reg, action, outcome
):
    allowed = visible_registries(personas[persona], action)

    assert allowed.filter(pk=registries[reg].pk).exists() is (outcome == "ok")


def test_roles_by_registry_names_each_role(personas, registry_a, registry_b):
    assert roles_by_registry(personas["alice"]) == {registry_a.pk: Role.ADMIN}
    assert roles_by_registry(personas["bob"]) == {registry_a.pk: Role.OPERATOR}
    assert roles_by_registry(personas["dave"]) == {registry_a.pk: Role.VIEWER}
    assert roles_by_registry(personas["root"]) == {
        registry_a.pk: Role.ADMIN,
        registry_b.pk: Role.ADMIN,
    }


def test_the_strongest_of_a_users_and_a_groups_role_wins(dave, registry_a):
    Membership.objects.create(registry=registry_a, user=dave, role=Role.OPERATOR)

    assert can(dave, Action.DELETE_TAG, registry_a)
    assert roles_by_registry(dave) == {registry_a.pk: Role.OPERATOR}
    assert list(visible_registries(dave)) == [registry_a]  # once, not per membership


@pytest.mark.parametrize("persona", ["alice", "carol", "dave", "root"])
def test_an_inactive_user_sees_nothing(personas, registry_a, persona):
    user = personas[persona]
    user.is_active = False
    user.save()

    assert not visible_registries(user).exists()
    assert roles_by_registry(user) == {}
    assert not can(user, Action.VIEW, registry_a)
    with pytest.raises(Http404):
        check(user, Action.VIEW, registry_a)


@pytest.mark.parametrize("registry_id", ["abc", "", None, "1.5", str(2**70), "-1"])
def test_get_registry_answers_404_for_a_bad_or_unknown_id(root, registry_id):
    with pytest.raises(Http404):
        get_registry(root, Action.VIEW, registry_id)


def test_403_names_the_role_needed(carol, registry_a):
    with pytest.raises(PermissionDenied, match="Operator role"):
        check(carol, Action.SYNC, registry_a)
