"""Test settings: the real PostgreSQL and Redis of the machine, never an embedded database."""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault(
    "REGUI_ENCRYPTION_KEYS",
    "YtlKLIZY6EoaB97TMv9ECH0SX6JE9-KPjy5pbwcsirY=,V8u4SFV-z4ZPRygEVCMOqDigVCQbmp4kvSxQLjbGRyo=",
)
os.environ.setdefault("REGUI_VAR_DIR", tempfile.mkdtemp(prefix="regui-test-var-"))

from regui.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303  speed only

# Tasks run inline in tests (enqueued on commit, like production); tests of real workers,
# crashes and redelivery start their own worker and turn this off.
CELERY_TASK_ALWAYS_EAGER = True
