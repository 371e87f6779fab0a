"""Settings for siyu.

Everything a deployment changes comes from the environment:

- ``SIYU_DATA_DIR``: folder for the embedded database, secrets and exports (default ``./siyu-data``).
- ``DATABASE_URL``: switches to PostgreSQL (``postgres://user@host:5432/db``); SQLite otherwise.
- ``SIYU_SECRET_KEY`` / ``SIYU_FIELD_KEY``: Django secret and the key protecting personal data.
  Without them a random key is generated once into the data folder, which suits the demo only.
- ``SIYU_DEBUG``: ``1`` for development.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

DATA_DIR = Path(os.environ.get("SIYU_DATA_DIR", "siyu-data")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret(name: str) -> str:
    """A per-installation secret kept in the data folder, so a demo needs no setup."""
    path = DATA_DIR / f".{name}"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SIYU_SECRET_KEY") or _local_secret("secret_key")
FIELD_ENCRYPTION_KEY = os.environ.get("SIYU_FIELD_KEY") or _local_secret("field_key")
DEBUG = os.environ.get("SIYU_DEBUG", "0") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("SIYU_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "siyu.tenancy",
    "siyu.commerce",
    "siyu.contacts",
    "siyu.events",
    "siyu.audiences",
    "siyu.insights",
    "siyu.analytics",
    "siyu.messaging",
    "siyu.scheduler",
    "siyu.experiments",
    "siyu.journeys",
    "siyu.inbox",
    "siyu.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_sqlite = f"sqlite:///{DATA_DIR / 'siyu.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_sqlite), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Analytics hash a million contacts or more; with PostgreSQL's default 4 MB a 30-day
    # "purchasers" count spilled its hash tables into hundreds of batches and ran for minutes
    # instead of 3 seconds. Per connection, and siyu keeps few connections open.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c work_mem={os.environ.get('SIYU_PG_WORK_MEM', '64MB')}"
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the console read while the worker or an import writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [Path(__file__).resolve().parent / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

# Largest batch one API call may carry; larger payloads get a 422 naming the limit.
SIYU_API_MAX_BATCH = 1000
# Largest request body in bytes (a 1,000-event batch with properties fits comfortably).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SIYU_LOG_LEVEL", "WARNING")},
}
