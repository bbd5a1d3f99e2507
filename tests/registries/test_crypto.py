"""Registry secrets at rest: ciphertext in the database, rotation, wrong keys, no leaks."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from registries import crypto
from registries.crypto import SecretDecryptionError
from registries.models import Registry

SECRET = "s3cr3t-registry-password-9d1e"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()


def stored_ciphertext(registry):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_ciphertext FROM registries_registry WHERE id = %s", [registry.pk]
        )
        return cursor.fetchone()[0]


def make_registry(name, secret=SECRET):
    registry = Registry(name=name, url=f"http://{name}.invalid", username="robot")
    registry.secret = secret
    registry.save()
    return registry


def rotate(stdout=None):
    call_command("rotate_encryption_keys", stdout=stdout)


@pytest.mark.django_db
def test_the_database_column_holds_ciphertext():
    registry = make_registry("ciphertext")

    raw = stored_ciphertext(registry)
    assert SECRET not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert Registry.objects.get(pk=registry.pk).secret == SECRET


@pytest.mark.django_db
def test_an_empty_secret_stores_nothing():
    registry = make_registry("empty", secret="")

    assert stored_ciphertext(registry) == ""
    assert not registry.has_secret
    assert registry.secret == ""


@pytest.mark.django_db
def test_rotation_keeps_every_secret_readable(capsys):
    with override_settings(REGUI_ENCRYPTION_KEYS=[OLD_KEY]):
        first = make_registry("first", "first-secret")
        second = make_registry("second", "second-secret")
        make_registry("without-secret", "")
        old_ciphertext = stored_ciphertext(first)

    with override_settings(REGUI_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        rotate()
        assert stored_ciphertext(first) != old_ciphertext

    assert "Re-encrypted 2 registry secret(s)" in capsys.readouterr().out
    with override_settings(REGUI_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key is gone
        assert Registry.objects.get(pk=first.pk).secret == "first-secret"
        assert Registry.objects.get(pk=second.pk).secret == "second-secret"


@pytest.mark.django_db
def test_rotation_stops_on_an_unreadable_secret_and_changes_nothing():
    with override_settings(REGUI_ENCRYPTION_KEYS=[OLD_KEY]):
        readable = make_registry("readable")
    with override_settings(REGUI_ENCRYPTION_KEYS=[OTHER_KEY]):
        lost = make_registry("lost")
    before = {registry.pk: stored_ciphertext(registry) for registry in (readable, lost)}

    with (
        override_settings(REGUI_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]),
        pytest.raises(CommandError) as error,
    ):
        rotate()

    message = str(error.value)
    assert "'lost' cannot be decrypted" in message
    assert "nothing was changed" in message
    assert "\n" not in message
    assert SECRET not in message
    assert {registry.pk: stored_ciphertext(registry) for registry in (readable, lost)} == before


@pytest.mark.django_db
def test_a_wrong_key_raises_a_clear_error_instead_of_returning_ciphertext():
    with override_settings(REGUI_ENCRYPTION_KEYS=[OLD_KEY]):
        registry = make_registry("wrong-key")

    with override_settings(REGUI_ENCRYPTION_KEYS=[OTHER_KEY]):
        reloaded = Registry.objects.get(pk=registry.pk)
        with pytest.raises(SecretDecryptionError, match="cannot be decrypted with any key"):
            reloaded.secret  # noqa: B018  the property is what raises


def test_garbage_ciphertext_raises_too():
    with pytest.raises(SecretDecryptionError):
        crypto.decrypt("not a fernet token")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "REGUI_ENCRYPTION_KEYS is not set"),
        (["  "], "REGUI_ENCRYPTION_KEYS is not set"),
        (["too-short"], "REGUI_ENCRYPTION_KEYS holds a malformed key"),
    ],
)
def test_missing_or_malformed_keys_are_a_configuration_error(keys, message):
    with (
        override_settings(REGUI_ENCRYPTION_KEYS=keys),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        crypto.encrypt("x")

    assert message in str(error.value)


def test_blanks_around_keys_are_ignored():
    with override_settings(REGUI_ENCRYPTION_KEYS=[f" {NEW_KEY}", f"{OLD_KEY} "]):
        assert crypto.decrypt(crypto.encrypt("value")) == "value"


@pytest.mark.django_db
def test_the_secret_is_not_in_repr_or_str(caplog):
    registry = make_registry("no-leak")

    with caplog.at_level(logging.DEBUG):
        logging.getLogger("regui.test").info("registry %r / %s", registry, registry)

    for text in (repr(registry), str(registry), caplog.text):
        assert SECRET not in text
        assert registry.secret_ciphertext not in text


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_with_one_readable_line():
    with override_settings(REGUI_ENCRYPTION_KEYS=[OTHER_KEY]):
        make_registry("lost")
    database = connection.settings_dict
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    environment.update(
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        REGUI_ENCRYPTION_KEYS=f"{NEW_KEY},{OLD_KEY}",
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_encryption_keys"],
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: the secret of registry 'lost' cannot be decrypted with any key of "
        "REGUI_ENCRYPTION_KEYS; nothing was changed"
    ]
