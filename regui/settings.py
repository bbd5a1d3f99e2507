"""RegUI settings: everything comes from the environment (see .env.example)."""

from pathlib import Path

from regui import env as conf
from regui import security

BASE_DIR = Path(__file__).resolve().parent.parent

if (BASE_DIR / ".env").exists():
    conf.env.read_env(str(BASE_DIR / ".env"))

# Empty values (as in a copied .env.example) mean "the default", here and below.
VAR_DIR = Path(conf.env.str("REGUI_VAR_DIR", default="") or BASE_DIR / "var")

DEBUG = conf.boolean("DEBUG", False)
SECRET_KEY = conf.required("SECRET_KEY")
ALLOWED_HOSTS = conf.string_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = conf.string_list("CSRF_TRUSTED_ORIGINS")

# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
REGUI_ENCRYPTION_KEYS = conf.required("REGUI_ENCRYPTION_KEYS").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "django_prometheus",
    "axes",
    "accounts",
    "audit",
    "jobs",
    "registries",
    "scanning",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "regui.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "regui.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "regui.urls"
WSGI_APPLICATION = "regui.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": conf.database(VAR_DIR / "regui.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection: lock a username after N failures for a while.
AXES_FAILURE_LIMIT = conf.integer("REGUI_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = conf.integer("REGUI_LOGIN_LOCKOUT_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = ["username"]
# Locking by username alone is deliberate: it protects an account however many addresses an
# attacker rotates through, which is what axes.W006 asks about.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"  # a page saying how long to wait

LANGUAGE_CODE = "en-us"
TIME_ZONE = conf.env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Front-end packages come from npm (package.json); only their dist folders are served.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS += [
    (f"vendor/{name}", NODE_MODULES / path)
    for name, path in {
        "bootstrap": "bootstrap/dist",
        "bootstrap-icons": "bootstrap-icons/font",
        "htmx": "htmx.org/dist",
        "chart.js": "chart.js/dist",
    }.items()
    if (NODE_MODULES / path).is_dir()
]
WHITENOISE_USE_FINDERS = DEBUG or conf.boolean("REGUI_STATIC_FROM_FINDERS", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Production mode (DEBUG off) gets secure cookies; TLS-related ones follow REGUI_HTTPS.
HTTPS = conf.boolean("REGUI_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
# Messages can carry a once-shown secret (a new notification secret): keep them server-side
# rather than in a signed but readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and conf.boolean("REGUI_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
REGUI_CONTENT_SECURITY_POLICY = (
    conf.env.str("REGUI_CONTENT_SECURITY_POLICY", default="") or security.CONTENT_SECURITY_POLICY
)
if conf.boolean("REGUI_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: JSON only, acknowledge after the task ran so a killed worker's job is redelivered.
CELERY_BROKER_URL = conf.broker_url() or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
    }
else:
    # An unacknowledged task (its worker died) is delivered again after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": conf.integer("REGUI_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=1)
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = conf.integer("REGUI_TASK_SOFT_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_TASK_IGNORE_RESULT = True  # job rows carry the state, not a result backend
CELERY_TASK_ALWAYS_EAGER = conf.boolean("REGUI_TASKS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A running job whose heartbeat is older than this is taken to be abandoned by a dead worker.
REGUI_JOB_STALE_SECONDS = conf.integer("REGUI_JOB_STALE_SECONDS", 900, minimum=2)
# /metrics answers a bearer token when one is set, else only these networks.
REGUI_METRICS_TOKEN = conf.env.str("REGUI_METRICS_TOKEN", default="")
REGUI_METRICS_ALLOWED_NETWORKS = conf.networks("REGUI_METRICS_ALLOWED_IPS", "127.0.0.1/32,::1/128")
# Audit events older than this many days are deleted; 0 keeps them for ever.
REGUI_AUDIT_RETENTION_DAYS = conf.integer("REGUI_AUDIT_RETENTION_DAYS", 365)
CELERY_BEAT_SCHEDULE = {
    "recover-abandoned-jobs": {"task": "jobs.tasks.recover_abandoned_jobs", "schedule": 60.0},
    "dispatch-due-syncs": {"task": "registries.tasks.dispatch_due_syncs", "schedule": 60.0},
    "prune-audit-events": {"task": "audit.tasks.prune_audit_events", "schedule": 3600.0},
    "rescan-images": {"task": "scanning.tasks.rescan_images", "schedule": 3600.0},
}

# Talking to registries: tight timeouts, bounded retries, and caps so that a hostile or broken
# registry cannot exhaust memory (manifests are at most 4 MiB in distribution).
REGUI_REGISTRY_CONNECT_TIMEOUT = conf.env.float("REGUI_REGISTRY_CONNECT_TIMEOUT", default=5.0)
REGUI_REGISTRY_READ_TIMEOUT = conf.env.float("REGUI_REGISTRY_READ_TIMEOUT", default=30.0)
REGUI_REGISTRY_MAX_BODY_BYTES = conf.integer(
    "REGUI_REGISTRY_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=65536
)
REGUI_REGISTRY_MAX_PAGES = conf.integer("REGUI_REGISTRY_MAX_PAGES", 1000, minimum=1)
REGUI_REGISTRY_RETRIES = conf.integer("REGUI_REGISTRY_RETRIES", 3)
REGUI_REGISTRY_MAX_RETRY_WAIT = conf.integer("REGUI_REGISTRY_MAX_RETRY_WAIT", 10)
REGUI_REGISTRY_CATALOG_PAGE_SIZE = conf.integer("REGUI_REGISTRY_CATALOG_PAGE_SIZE", 1000, minimum=1)

# Trivy (see .env.example): a local binary with a cache per worker process, or a Trivy server.
REGUI_TRIVY_BIN = conf.env.str("REGUI_TRIVY_BIN", default="")
REGUI_TRIVY_SERVER = conf.env.str("REGUI_TRIVY_SERVER", default="")
REGUI_TRIVY_TOKEN = conf.env.str("REGUI_TRIVY_TOKEN", default="")
REGUI_TRIVY_CACHE_DIR = conf.env.str("REGUI_TRIVY_CACHE_DIR", default="") or str(VAR_DIR / "trivy")
REGUI_TRIVY_SKIP_DB_UPDATE = conf.boolean("REGUI_TRIVY_SKIP_DB_UPDATE", False)
REGUI_TRIVY_OFFLINE_SCAN = conf.boolean("REGUI_TRIVY_OFFLINE_SCAN", False)
REGUI_TRIVY_DB_REPOSITORY = conf.env.str("REGUI_TRIVY_DB_REPOSITORY", default="")
REGUI_TRIVY_TIMEOUT = conf.env.float("REGUI_TRIVY_TIMEOUT", default=600.0)
# How long `POST /api/scan` with "wait": true holds the request before answering 202.
REGUI_SCAN_WAIT_SECONDS = conf.integer("REGUI_SCAN_WAIT_SECONDS", 60, minimum=1)

# The API: API tokens first so that an unauthenticated call is a 401 with WWW-Authenticate.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "regui.rest.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["regui.rest.AnonThrottle", "regui.rest.TokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": conf.rate("REGUI_API_ANON_RATE", "60/min"),
        "token": conf.rate("REGUI_API_TOKEN_RATE", "600/min"),
    },
    "EXCEPTION_HANDLER": "regui.rest.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RegUI API",
    "DESCRIPTION": (
        "Browse, clean up and scan Docker/OCI registries.\n\n"
        "Authenticate with an API token from *My API tokens* (or `manage.py issue_token`), "
        "sent as `Authorization: Bearer regui_…`; a read-only token may only read. Roles are "
        "per registry: a registry you are not a member of answers 404, too low a role 403. "
        'Errors are JSON: `{"detail": …}`, or field errors for bad input (nothing changed). '
        "Background work (sync, scan, cleanup) answers 202 with a job to poll at "
        "`/api/v1/jobs/{id}/`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the drf-spectacular-sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "regui.api_schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {"RoleEnum": "registries.models.Role"},
}

LOG_FORMAT = conf.env.str("REGUI_LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "regui.request_id.RequestIdLogFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "regui.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": conf.env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
