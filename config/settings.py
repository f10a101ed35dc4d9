"""Django settings, read from environment variables only (see README, Configuration)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_broker, env_choice, env_database, env_int, env_list, env_str, env_time_zone

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string (DEBUG=true allows a development key)."
        )
    SECRET_KEY = "development-only-key-never-use-in-production-" + "x" * 20

# Old keys, still accepted for signed data and for decrypting connection credentials after a rotation.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
# Connection credentials are encrypted (django-fernet-encrypted-fields) with keys derived from
# SECRET_KEY and each of these; the first encrypts, the others still decrypt. To rotate, put a new
# one first and run `manage.py rotate_credentials`.
SALT_KEY = env_list("CREDENTIALS_KEYS", ["customer-groups-credentials"])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_beat",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "config",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "customers",
    "groups",
    "integrations",
    "automations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# PostgreSQL only: DATABASE_URL, else the embedded server under var/.
_database = env_database()
if _database is None:
    from .embedded import database_settings

    _database = database_settings(VAR_DIR)
# Django's own queries bind on the client and are never prepared; this lets the membership engine
# prepare its event-path statement once per connection (see groups/engine.py).
_database.setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
# No JIT: PostgreSQL spends most of a wide statement's time compiling it (the membership engine
# writes a condition per group) and JIT pays off only for long analytic queries, which this
# application does not run.
_options = _database.setdefault("OPTIONS", {})
# A statement whose client went away (a killed worker) is stopped within seconds rather than
# running on and holding its locks (PostgreSQL 14 and later).
_options["options"] = f"{_options.get('options', '')} -c jit=off -c client_connection_check_interval=5s".strip()
DATABASES = {"default": _database}
# A large scope (an import) is evaluated in chunks of customers, several at once; see groups/engine.py.
GROUPS_EVALUATION_CHUNK = env_int("GROUPS_EVALUATION_CHUNK", 10_000, minimum=1)
GROUPS_EVALUATION_WORKERS = env_int("GROUPS_EVALUATION_WORKERS", min(4, os.cpu_count() or 1), minimum=1)
# The largest request body read into memory: room for a full batch of 1,000 events of up to 10 KB each.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Admin login lockout (django-axes): AXES_FAILURE_LIMIT failed logins for one username from one
# address lock that pair out for AXES_COOLOFF_MINUTES; `manage.py axes_reset` lifts every lockout.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.throttles.client_ip"

# Shared by every web process: API throttle counts. Without CACHE_URL each process counts alone.
_cache_url = env_str("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# The longest a preview's statements may run before it is refused as too expensive.
PREVIEW_TIME_LIMIT_MS = env_int("PREVIEW_TIME_LIMIT_MS", 5000, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Production hardening; DEBUG relaxes it for local http.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from the app itself, never inline. Styles may be
# inline: the admin's widgets and Redoc set style attributes; Redoc's search runs in a blob: worker.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_in_one_line": {"()": "config.errors.ClientErrorsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.request": {"filters": ["client_errors_in_one_line"]}},
}

# Celery: CELERY_BROKER_URL, else kombu's filesystem transport under var/ (no server needed).
_broker = env_broker()
if _broker is None:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    _broker = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_BROKER_URL = _broker
CELERY_TASK_IGNORE_RESULT = True
# A task's message is acknowledged when it ends, and handed back if its worker process dies, so
# a killed worker's refresh runs again; tasks are written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Email: Django's backend, SMTP by default (automations send through it).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Customer groups <noreply@localhost>")
EMAIL_MESSAGE_ID_DOMAIN = env_str("EMAIL_MESSAGE_ID_DOMAIN", "customer-groups.local")
# The address of the site as customers reach it, for the unsubscribe links in messages.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# SMS through Twilio's Messages API; TWILIO_FROM is a phone number (+1555...) or a Messaging Service SID.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM = env_str("TWILIO_FROM", "")
TWILIO_API_URL = env_str("TWILIO_API_URL", "https://api.twilio.com")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # DjangoModelPermissions, with reads needing the model's view permission too (config.permissions).
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Requests per user (across their tokens and session) and per token; over it, 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.UserThrottle", "config.throttles.TokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "3000/minute"),
        "token": env_str("API_THROTTLE_TOKEN", "3000/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Customer groups API",
    "DESCRIPTION": "Customers, accounts, events and the groups that keep themselves current. "
    "Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc served from the app itself, so the docs work without outside network access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; each set of choices gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "automations.models.Firing.Status",
        "SendStatusEnum": "automations.models.Send.Status",
        "TaskStatusEnum": "automations.models.Task.Status",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.declare_error_answers"],
}
