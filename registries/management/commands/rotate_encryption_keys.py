from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from registries import crypto
from registries.models import Registry


class Command(BaseCommand):
    help = (
        "Re-encrypt every registry secret with the first key of REGUI_ENCRYPTION_KEYS. "
        "Run it after putting a new key first; drop the old key only afterwards."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            # bandit B106: an empty ciphertext means "no secret"; it is no password.
            locked = Registry.objects.select_for_update().order_by("pk")
            with_secret = locked.exclude(secret_ciphertext="")  # nosec B106
            registries = list(with_secret)
            for registry in registries:
                try:
                    registry.secret_ciphertext = crypto.rotate(registry.secret_ciphertext)
                except crypto.SecretDecryptionError:
                    # Nothing has been written yet: every secret must open before any is saved.
                    raise CommandError(
                        f"the secret of registry {registry.name!r} cannot be decrypted with any "
                        "key of REGUI_ENCRYPTION_KEYS; nothing was changed"
                    ) from None
            Registry.objects.bulk_update(registries, ["secret_ciphertext"])
        self.stdout.write(f"Re-encrypted {len(registries)} registry secret(s) with the first key.")
