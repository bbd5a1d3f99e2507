from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import tokens


class Command(BaseCommand):
    help = "Issue an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--read-only", action="store_true", help="Only safe methods.")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until it expires (default never)."
        )
        parser.add_argument("--name", default="issued from the command line")

    def handle(self, *args, username, read_only, expires_days, name, **options):
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        _, value = tokens.issue(user, name=name, read_only=read_only, expires_days=expires_days)
        self.stdout.write(value)
