"""Test personas: who is who in every permission, UI and API test.

Registries (database rows; their URLs point nowhere until a test needs a live registry):
    registry_a        "registry-a"
    registry_b        "registry-b"
    live_registry_a   registry_a with its URL pointed at the session `registry` fixture
                      (a real, open distribution registry)

Users (all with the password PERSONA_PASSWORD):
    alice     admin of A
    bob       operator of A
    carol     viewer of A
    dave      viewer of A through the group "a-viewers" (no membership of his own)
    mallory   viewer of B only
    root      superuser (admin of everything), also staff
    anonymous not a fixture of its own: `personas["anonymous"]` is an AnonymousUser

    personas      {name: user} for all of the above, "anonymous" included
    client_for    client_for("alice") -> a django.test.Client signed in as alice;
                  client_for("anonymous") -> a signed-out Client;
                  client_for("bob", client_class=rest_framework.test.APIClient) for the API.

Example:
    def test_bob_cannot_clean_up(client_for, registry_a):
        client = client_for("bob")
        ...
"""

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.test import Client

from registries.models import Membership, Registry, Role

PERSONA_PASSWORD = "persona-password-7f3a"
PERSONA_NAMES = ("alice", "bob", "carol", "dave", "mallory", "root", "anonymous")


def make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(
        username=username, password=PERSONA_PASSWORD, email=f"{username}@example.test", **extra
    )


@pytest.fixture
def registry_a(db):
    return Registry.objects.create(name="registry-a", url="http://registry-a.invalid")


@pytest.fixture
def registry_b(db):
    return Registry.objects.create(name="registry-b", url="http://registry-b.invalid")


@pytest.fixture
def live_registry_a(registry_a, registry):
    registry_a.url = registry.url
    registry_a.save(update_fields=["url"])
    return registry_a


@pytest.fixture
def alice(django_user_model, registry_a):
    user = make_user(django_user_model, "alice")
    Membership.objects.create(registry=registry_a, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def bob(django_user_model, registry_a):
    user = make_user(django_user_model, "bob")
    Membership.objects.create(registry=registry_a, user=user, role=Role.OPERATOR)
    return user


@pytest.fixture
def carol(django_user_model, registry_a):
    user = make_user(django_user_model, "carol")
    Membership.objects.create(registry=registry_a, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def dave(django_user_model, registry_a):
    user = make_user(django_user_model, "dave")
    group = Group.objects.create(name="a-viewers")
    user.groups.add(group)
    Membership.objects.create(registry=registry_a, group=group, role=Role.VIEWER)
    return user


@pytest.fixture
def mallory(django_user_model, registry_b):
    user = make_user(django_user_model, "mallory")
    Membership.objects.create(registry=registry_b, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def root(django_user_model, db):
    return django_user_model.objects.create_superuser(
        username="root", password=PERSONA_PASSWORD, email="root@example.test"
    )


@pytest.fixture
def personas(alice, bob, carol, dave, mallory, root):
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "dave": dave,
        "mallory": mallory,
        "root": root,
        "anonymous": AnonymousUser(),
    }


@pytest.fixture
def client_for(personas):
    def make(name, client_class=Client):
        client = client_class()
        user = personas[name]
        if user.is_authenticated:
            client.force_login(user)
        return client

    return make
