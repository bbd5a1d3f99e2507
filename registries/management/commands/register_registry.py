"""Add (or update) a registry from the command line, optionally with members and a first sync."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registries.models import Membership, Registry, Role
from registries.sync import sync_registry


class Command(BaseCommand):
    help = "Register a registry by name and URL (updated if the name exists), then sync it."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url", help="Base URL, e.g. http://127.0.0.1:5000")
        parser.add_argument("--username", default="")
        parser.add_argument(
            "--password-file", help="A file holding the password (never on the command line)."
        )
        parser.add_argument(
            "--member",
            action="append",
            default=[],
            metavar="USER:ROLE",
            help="Give an existing user a role (viewer, operator, admin); repeatable.",
        )
        parser.add_argument("--sync", action="store_true", help="Sync it now, in this process.")

    def handle(self, *args, name, url, username, password_file, member, sync, **options):
        registry, created = Registry.objects.get_or_create(name=name, defaults={"url": url})
        registry.url, registry.username = url, username
        if password_file:
            with open(password_file) as secret:
                registry.secret = secret.read().strip()
        registry.save()
        self.stdout.write(f"{'Registered' if created else 'Updated'} registry {name} at {url}.")
        for entry in member:
            self._add_member(registry, entry)
        if sync:
            result = sync_registry(registry)
            self.stdout.write(f"Synced {name}: {result}")

    def _add_member(self, registry, entry):
        username, _, role = entry.partition(":")
        if role not in Role.values:
            raise CommandError(f"--member {entry!r}: the role must be one of {Role.values}.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--member {entry!r}: there is no user {username!r}.")
        Membership.objects.update_or_create(registry=registry, user=user, defaults={"role": role})
        self.stdout.write(f"{username} is {role} of {registry.name}.")
