"""Settings, all driven by environment variables (django-environ).

Development default (no variables set, ``DJANGO_DEBUG=1``): SQLite under ``var/`` and Celery
tasks executed in-process, so the app runs with no external server. Production: set
``DATABASE_URL`` (PostgreSQL), ``CELERY_BROKER_URL`` (Redis), ``DJANGO_SECRET_KEY`` and
``DJANGO_ALLOWED_HOSTS``; the secure defaults below then apply (``manage.py check --deploy``).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`) "
            "or run in development mode with DJANGO_DEBUG=1."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdefghijklmnop"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
VAR_DIR = Path(env.str("WHISPERLITE_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc files served locally: /api/docs/ works offline
    "django_htmx",
    "studyapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studyapp.middleware.RejectUnstorableInputMiddleware",
    "studyapp.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "studyapp.urls"
WSGI_APPLICATION = "studyapp.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# --- Database: PostgreSQL in production, SQLite as the embedded development default -------
if "DATABASE_URL" not in env:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded SQLite file lives here
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A pooled connection is checked before reuse, so a database restart costs no request an error
# once the database is back (without it every pooled connection fails once).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Fail fast while the database is unreachable: the 503 page says to retry, workers retry.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )

# --- Auth -------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files (whitenoise serves static files in every mode) ---------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
if DEBUG:
    STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise expects it even when serving from the finders

# --- Security (secure unless DEBUG; every flag overridable for a TLS-terminating proxy) --
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14  # participants may resume within two weeks
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # study tokens in URLs must not leak to other sites
X_FRAME_OPTIONS = "DENY"
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery: a real broker in production; in-process execution by default --------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_RESULT_BACKEND = None  # results live in the database rows, never in the broker
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a new PostgreSQL connection per ranking (5.3 ms here, more than all the task's
# SQL). Kept instead, like a web process's between requests: checked before each task
# (studyapp/worker_init.py, with CONN_HEALTH_CHECKS) and recycled after DATABASE_CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # one ranking at a time per process: they are CPU-bound
# One worker process per core by default (each with WHISPERLITE_TORCH_THREADS torch threads).
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=os.cpu_count() or 1)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Sending a task while the broker is down must not hold a participant's page for long: two quick
# tries, then the request is kept (committed) and the sweeper sends it when the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# Redis redelivers an unacknowledged (acks_late) message after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900)}

# --- WhisperLite: encoder, data and caches ----------------------------------------------
WHISPERLITE_ENCODER = env.str("WHISPERLITE_ENCODER", default="sentence-transformers")
WHISPERLITE_DEVICE = env.str("WHISPERLITE_DEVICE", default="cpu")
# Torch intra-op threads per ranking process (worker child, or the web process in the embedded
# mode): 1, and one worker process per core, fits a small shared host (measured: issue 10).
WHISPERLITE_TORCH_THREADS = env.int("WHISPERLITE_TORCH_THREADS", default=1)
_default_data = BASE_DIR.parent / "shared" / "data"
WHISPERLITE_DATA_DIR = env.str(
    "WHISPERLITE_DATA_DIR", default=str(_default_data) if _default_data.exists() else ""
)
WHISPERLITE_CACHE_DIR = env.str("WHISPERLITE_CACHE_DIR", default=str(VAR_DIR / "cache" / "embeddings"))
WHISPERLITE_CHECKPOINT_DIR = env.str("WHISPERLITE_CHECKPOINT_DIR", default=str(VAR_DIR / "checkpoints"))
# Catalogs with at least this many items are memory-mapped (shared by worker processes) and
# ranked through an approximate FAISS index built ahead of participants (`manage.py
# build_search_index`); smaller ones are scored exactly. NPROBE: IVF cells scanned per query
# (0: 12 % of the cells). Measurements: docs/benchmarks.md, "Large catalogs".
WHISPERLITE_ANN_MIN_ITEMS = env.int("WHISPERLITE_ANN_MIN_ITEMS", default=50_000)
WHISPERLITE_ANN_NPROBE = env.int("WHISPERLITE_ANN_NPROBE", default=0)
# Catalog embedding (studyapp/embedding_jobs.py, docs/embedding-large-catalogs.md): with a broker, a catalog
# of at least WHISPERLITE_EMBED_SHARD_MIN_ITEMS items is split into shards of about
# WHISPERLITE_EMBED_SHARD_SIZE items encoded by the Celery workers (queue WHISPERLITE_EMBED_QUEUE,
# default: the default queue); smaller catalogs, and the embedded mode, embed in one process.
# Missing shards that no live process holds are re-sent when nothing moved for
# WHISPERLITE_EMBED_RESEND_SECONDS. The cache dir must be shared by all workers.
WHISPERLITE_EMBED_SHARD_MIN_ITEMS = env.int("WHISPERLITE_EMBED_SHARD_MIN_ITEMS", default=20_000)
WHISPERLITE_EMBED_SHARD_SIZE = env.int("WHISPERLITE_EMBED_SHARD_SIZE", default=2_000)
WHISPERLITE_EMBED_QUEUE = env.str("WHISPERLITE_EMBED_QUEUE", default="")
WHISPERLITE_EMBED_RESEND_SECONDS = env.int("WHISPERLITE_EMBED_RESEND_SECONDS", default=120)
# Catalog images are served from here by the image view (only files inside a catalog's folder).
WHISPERLITE_MAX_REQUEST_CHARS = env.int("WHISPERLITE_MAX_REQUEST_CHARS", default=300)
# Request lifecycle (studyapp/models/lifecycle.py, docs/reliability.md). A worker holds a request
# under a lease it renews every third of it while ranking; a killed worker's request is claimable
# again when the lease runs out. The sweeper (a thread in every Celery worker, and in the web
# process when tasks run in-process) re-sends requests whose message was never sent or may have
# been lost, every WHISPERLITE_SWEEP_SECONDS, at most once per WHISPERLITE_RESEND_SECONDS each.
WHISPERLITE_CLAIM_LEASE_SECONDS = env.int("WHISPERLITE_CLAIM_LEASE_SECONDS", default=15)
# The ranking task's two statements are prepared on the server (planned once per connection;
# studyapp/ranking_store.py). Off behind a transaction-pooling PgBouncer older than 1.21.
WHISPERLITE_PREPARED_STATEMENTS = env.bool("WHISPERLITE_PREPARED_STATEMENTS", default=True)
WHISPERLITE_SWEEP_SECONDS = env.float("WHISPERLITE_SWEEP_SECONDS", default=5.0)  # 0 turns it off
WHISPERLITE_RESEND_SECONDS = env.int("WHISPERLITE_RESEND_SECONDS", default=15)
# Participants are told that preparing takes longer than usual after this many seconds.
WHISPERLITE_SLOW_NOTICE_SECONDS = env.int("WHISPERLITE_SLOW_NOTICE_SECONDS", default=20)
# With tasks in-process, run them in a background thread after the response, so the participant
# sees "preparing" at once (the tests turn this off to rank synchronously).
WHISPERLITE_EAGER_IN_BACKGROUND = env.bool("WHISPERLITE_EAGER_IN_BACKGROUND", default=True)
if WHISPERLITE_EMBED_SHARD_SIZE < 1:
    raise ImproperlyConfigured("WHISPERLITE_EMBED_SHARD_SIZE must be at least 1.")
if WHISPERLITE_CLAIM_LEASE_SECONDS < 3:
    raise ImproperlyConfigured("WHISPERLITE_CLAIM_LEASE_SECONDS must be at least 3 (renewed every third).")

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 500,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhisperLite Study API",
    "DESCRIPTION": "Read access to studies, participants and judgements for authenticated researchers.",
    "VERSION": "1.0.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging ----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
