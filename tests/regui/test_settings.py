"""Start-up with bad settings stops with one readable line, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "nonsense", "DATABASE_URL must be a URL"),
        ("REDIS_URL", "http://example", "REDIS_URL must be a URL"),
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("REGUI_ENCRYPTION_KEYS", "not-a-key", "REGUI_ENCRYPTION_KEYS holds a malformed key"),
        ("REGUI_ENCRYPTION_KEYS", "", "REGUI_ENCRYPTION_KEYS is not set"),
        ("SECRET_KEY", "", "SECRET_KEY is not set"),
    ],
)
def test_bad_setting_stops_startup_with_one_line(variable, value, message):
    result = run_manage("check", **{variable: value})

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_secrets_can_come_from_files(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-file")
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        SECRET_KEY="",
        SECRET_KEY_FILE=str(key_file),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-file"


def test_production_defaults():
    from regui import settings

    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert settings.CELERY_TASK_SERIALIZER == "json"
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_ACKS_LATE


def test_embedded_sqlite_transactions_hold_the_write_lock_from_their_start(tmp_path):
    """Without DATABASE_URL, cache writers take turns as the advisory lock makes them on
    PostgreSQL: a second writer cannot begin while a transaction is open."""
    script = "\n".join(
        [
            "import sqlite3",
            "from django.db import connection, transaction",
            "with transaction.atomic():",
            "    other = sqlite3.connect(connection.settings_dict['NAME'], timeout=0)",
            "    try:",
            "        other.execute('BEGIN IMMEDIATE')",
            "        print('a second writer began')",
            "    except sqlite3.OperationalError as error:",
            "        print(error)",
        ]
    )
    result = run_manage(
        "shell", "-c", script, DATABASE_URL="", REDIS_URL="", REGUI_VAR_DIR=str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "database is locked"
