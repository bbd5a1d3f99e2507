"""Settings helpers that read the environment and fail loudly on a bad value.

Every error is an ImproperlyConfigured with one readable line naming the variable, so
start-up stops with a message instead of running half-configured.
"""

import ipaddress
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.FileAwareEnv()  # every VAR may also come from a file named by VAR_FILE

DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}
BROKER_SCHEMES = {"redis", "rediss", "filesystem"}
RATE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


def _checked_url(name, value, schemes):
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with one of {sorted(schemes)}, got {value!r}"
        )
    if parts.scheme not in ("sqlite", "filesystem") and not parts.hostname:
        raise ImproperlyConfigured(f"{name} has no host: {value!r}")
    return value


SQLITE_ENGINE = "django.db.backends.sqlite3"
SQLITE_OPTIONS = {
    # A transaction takes the write lock as it begins, so a registry's cache writers take turns
    # as PostgreSQL's advisory lock makes them, and none fails half-way on a lock it cannot get.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,  # seconds to wait for that lock: web, worker and beat share the file
}


def database(default_sqlite_path):
    """The DATABASES['default'] dict from DATABASE_URL, or an embedded SQLite file."""
    value = env.str("DATABASE_URL", default="")
    if not value:
        return {
            "ENGINE": SQLITE_ENGINE,
            "NAME": str(default_sqlite_path),
            "OPTIONS": SQLITE_OPTIONS,
        }
    try:
        config = environ.Env.db_url_config(_checked_url("DATABASE_URL", value, DATABASE_SCHEMES))
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if config["ENGINE"] == SQLITE_ENGINE:
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    config.setdefault("CONN_MAX_AGE", 60)
    config["CONN_HEALTH_CHECKS"] = True  # a restarted PostgreSQL is picked up on the next request
    return config


def broker_url():
    """REDIS_URL if set (checked), else an empty string meaning the embedded file broker."""
    value = env.str("REDIS_URL", default="")
    return _checked_url("REDIS_URL", value, BROKER_SCHEMES) if value else ""


def boolean(name, default):
    value = env.str(name, default=str(default)).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def integer(name, default, minimum=0):
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def required(name):
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set (see .env.example)")
    return value


def string_list(name, default=""):
    return [item.strip() for item in env.str(name, default=default).split(",") if item.strip()]


def networks(name, default=""):
    """A comma-separated list of addresses or CIDR networks."""
    try:
        return [ipaddress.ip_network(item, strict=False) for item in string_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} holds a bad address or network: {exc}") from None


def rate(name, default):
    """A request rate as Django REST framework writes it: N/s, N/min, N/hour or N/day."""
    value = env.str(name, default=default).strip()
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ImproperlyConfigured(
            f"{name} must look like 60/min (s, min, hour, day), got {value!r}"
        )
    return value
