"""Settings for the asset-management site (development, demo and tests).

Production overrides live in ``assetsite.settings_production``. With ``DATABASE_URL``
unset, an embedded PostgreSQL with pgvector is started (or joined) on import.
"""

import os
from pathlib import Path

from assetsite.database import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ASSETSITE_VAR", BASE_DIR / "var"))

# Development default only; settings_production refuses to start without a real one.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc from the package, never a CDN
    "django_q",
    "similarity",
    "datasets",
    "assetsite",
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
]

ROOT_URLCONF = "assetsite.urls"
WSGI_APPLICATION = "assetsite.wsgi.application"

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
                "datasets.context_processors.sidebar",
            ],
        },
    },
]

DATABASES = {"default": database_settings(BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-q2's cluster statistics (the /healthz worker check, qmonitor) live in a database
# cache shared by the web process and the worker cluster; everything else (throttling)
# uses a per-process memory cache. Use Redis for both when running several web processes.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "django_q": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "assetsite_cache",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "datasets:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Asset files are never served from MEDIA_URL: views check project membership first.
MEDIA_ROOT = Path(os.environ.get("ASSETSITE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"

# Upload caps (see datasets/uploads.py).
DATA_UPLOAD_MAX_NUMBER_FILES = 100
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATASETS_MAX_IMAGE_BYTES = 50 * 1024 * 1024
DATASETS_MAX_VIDEO_BYTES = 500 * 1024 * 1024
DATASETS_MAX_FILES_PER_REQUEST = 100
DATASETS_PAGE_SIZE = 60

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # drf-spectacular's, plus every error answer of each operation (similarity's)
    "DEFAULT_SCHEMA_CLASS": "similarity.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "datasets.pagination.BoundedPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"similarity_search": "120/min", "uploads": "600/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Asset site API",
    "DESCRIPTION": "Projects, datasets, image assets and DINOv2 similarity search.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ works offline: Swagger UI's JS and CSS are static files of the sidecar
    # package. (No ReDoc page: its bundle fetches its logo from a CDN.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No links nested in the operations' toggle buttons (axe: nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    # links from each list (and create) to its detail operation, for generated clients
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "similarity.api.schema.add_links"],
}

# django-q2: one worker (each would load its own model copy and fight for the same
# cores; torch uses all of them), timeout < retry so a running task is never
# redelivered, and a bounded number of attempts.
Q_CLUSTER = {
    "name": "assetsite",
    "orm": "default",
    "workers": int(os.environ.get("ASSETSITE_WORKERS", "1")),
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "recycle": 500,
    # how often an idle ORM-broker worker looks for tasks: a query cluster that answers
    # outside-image, region and match-map requests wants less (README "Look closer")
    "poll": float(os.environ.get("ASSETSITE_Q_POLL", "0.5")),
    "save_limit": 500,
    "label": "Background tasks",
    "cache": "django_q",
}
# Many worker machines: django-q2's Redis broker instead of the ORM broker (README "Scale
# out"), e.g. ASSETSITE_REDIS_URL=redis://queue.internal:6379/0.
if os.environ.get("ASSETSITE_REDIS_URL"):
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = os.environ["ASSETSITE_REDIS_URL"]

#: A model folder given once (``SIMILARITY_MODEL=<folder> bin/run-site``) is remembered
#: here by ``serve``, so a later run without the variable does not quietly go back to the
#: hub model (offline, it cannot load); delete the file to forget it.
MODEL_MEMORY = VAR_DIR / "similarity-model"
HUB_MODEL = "facebook/dinov2-small"


def _model_name() -> str:
    given = os.environ.get("SIMILARITY_MODEL", "").strip()
    if given:
        return given
    try:
        return MODEL_MEMORY.read_text().strip() or HUB_MODEL
    except OSError:
        return HUB_MODEL


SIMILARITY = {
    "ASSET_MODEL": "datasets.Asset",
    "IMAGE_FIELD": "file",
    "PROJECT_MODEL": "datasets.Project",
    "PROJECT_LOOKUP": "dataset__project",
    "IS_IMAGE": {"kind": "image"},
    "MODEL_NAME": _model_name(),
    # Error messages name what an operator of this site actually sets.
    "MODEL_NAME_SOURCE": "the SIMILARITY_MODEL environment variable",
    "ACCESS_POLICY": "datasets.integration.MembershipAccess",
    "ASSET_URL": "datasets.integration.asset_url",
    "THUMBNAIL_URL": "datasets.integration.thumbnail_url",
    "ASSET_LABEL": "datasets.integration.asset_label",
    "ASSET_SERIALIZER": "datasets.api.AssetSerializer",
    # Bulk actions of the demo (similarity.actions): tag, copy and move to a dataset.
    "BULK_ACTIONS": [
        "datasets.bulk_actions.DatasetTagAction",
        "datasets.bulk_actions.CopyToDatasetAction",
        "datasets.bulk_actions.MoveToDatasetAction",
    ],
    "ASSET_GROUP": "datasets.bulk_actions.asset_group",
    # "Add to dataset" on the results of an outside image (similarity.search.outside).
    "ADD_QUERY_IMAGE": "datasets.query_targets.DatasetTargets",
    # Text search ("Describe what you are looking for"): off unless SIMILARITY_TEXT_MODEL
    # names a SigLIP checkpoint (a hub id such as google/siglip2-base-patch32-256, or a
    # folder: `python manage.py similarity_make_test_model --text DIR` writes a tiny one).
    "TEXT_MODEL_NAME": os.environ.get("SIMILARITY_TEXT_MODEL", "").strip() or None,
    "TEXT_MODEL_NAME_SOURCE": "the SIMILARITY_TEXT_MODEL environment variable",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "similarity": {"handlers": ["console"], "level": "INFO"},
        "datasets": {"handlers": ["console"], "level": "INFO"},
        "assetsite": {"handlers": ["console"], "level": "INFO"},
    },
}
