"""The one answer to "may this user do this on this registry?", for UI and API alike.

A registry the user has no role in does not exist for them (404); a role too low for the
action is a 403. Superusers are admins of every registry.
"""

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from registries.models import ROLE_RANK, Membership, Registry, Role


class Action(StrEnum):
    VIEW = "view"  # browse, read scans
    SYNC = "sync"
    SCAN = "scan"
    DELETE_TAG = "delete_tag"
    CLEANUP = "cleanup"  # bulk cleanup and retention
    CHANGE_REGISTRY = "change_registry"  # settings, test connection, delete the registry
    MANAGE_MEMBERS = "manage_members"


REQUIRED_ROLE = {
    Action.VIEW: Role.VIEWER,
    Action.SYNC: Role.OPERATOR,
    Action.SCAN: Role.OPERATOR,
    Action.DELETE_TAG: Role.OPERATOR,
    Action.CLEANUP: Role.ADMIN,
    Action.CHANGE_REGISTRY: Role.ADMIN,
    Action.MANAGE_MEMBERS: Role.ADMIN,
}


def _membership_filter(user, prefix=""):
    return Q(**{f"{prefix}user": user}) | Q(**{f"{prefix}group__in": user.groups.all()})


def role_for(user, registry):
    """The user's strongest role in the registry, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = Membership.objects.filter(_membership_filter(user), registry=registry).values_list(
        "role", flat=True
    )
    strongest = max(roles, key=ROLE_RANK.__getitem__, default=None)
    return Role(strongest) if strongest else None


def roles_by_registry(user):
    """{registry id: role} for every registry the user can see (one query)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    if user.is_superuser:
        return dict.fromkeys(Registry.objects.values_list("pk", flat=True), Role.ADMIN)
    roles = {}
    for registry_id, role in Membership.objects.filter(_membership_filter(user)).values_list(
        "registry_id", "role"
    ):
        if ROLE_RANK[role] > ROLE_RANK.get(roles.get(registry_id), 0):
            roles[registry_id] = Role(role)
    return roles


def visible_registries(user, action=Action.VIEW):
    """The registries on which the user may perform the action."""
    if not user.is_authenticated or not user.is_active:
        return Registry.objects.none()
    if user.is_superuser:
        return Registry.objects.all()
    needed = ROLE_RANK[REQUIRED_ROLE[action]]
    allowed_roles = [role for role, rank in ROLE_RANK.items() if rank >= needed]
    memberships = Membership.objects.filter(_membership_filter(user), role__in=allowed_roles)
    return Registry.objects.filter(pk__in=memberships.values("registry_id"))


def allows(role, action):
    """Whether a role (or None, no role) may perform the action."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[REQUIRED_ROLE[action]]


def can(user, action, registry):
    return allows(role_for(user, registry), action)


def check(user, action, registry):
    """Raise Http404 if the user cannot see the registry, PermissionDenied if the role is low."""
    role = role_for(user, registry)
    if role is None:
        raise Http404("No such registry.")
    if not allows(role, action):
        raise PermissionDenied(f"This needs the {REQUIRED_ROLE[action].label} role.")


def get_registry(user, action, registry_id):
    """The registry with that id, checked for the action (404 for an unknown or bad id)."""
    try:
        registry = Registry.objects.get(pk=int(registry_id))
    except (Registry.DoesNotExist, TypeError, ValueError):
        raise Http404("No such registry.") from None
    check(user, action, registry)
    return registry
