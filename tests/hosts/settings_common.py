"""Minimal host settings: no `datasets`, no `assetsite` apps; only the database helper.

Each host's settings module adds its DATABASES (a name of its own) and its SIMILARITY dict,
naming only what a real host would: the asset model, its image field, the project path,
the model and maybe an access policy.
"""

import os
import tempfile
from pathlib import Path

from assetsite.database import database_settings

BASE_DIR = Path(__file__).resolve().parents[2]
SECRET_KEY = "host-test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "tests.hosts.photos",
    "tests.hosts.archive",
    "similarity",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.hosts.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "static/"
# A second process of a test shares the first one's media (tests/hosts/second_process.py).
MEDIA_ROOT = os.environ.get("SIMILARITY_HOST_MEDIA_ROOT") or tempfile.mkdtemp(prefix="host-media-")
MEDIA_URL = "/media/"
USE_TZ = True
# An older site's default: 4-byte keys (the photos app asks for BigAutoField itself).
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/accounts/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The host's own DRF defaults are permissive; similarity must not be.
REST_FRAMEWORK = {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
Q_CLUSTER = {"name": "photos", "orm": "default", "workers": 1, "timeout": 60, "retry": 90,
             "max_attempts": 2}
MODEL_DIR = os.environ["SIMILARITY_TEST_MODEL"]


def database(name: str) -> dict:
    """The embedded PostgreSQL database ``name`` (pytest-django then uses ``test_<name>``).

    SIMILARITY_HOST_DB_PREFIX (tests/test_hosts.py passes its own database name) keeps
    two people running the host suites at once off each other's databases.
    SIMILARITY_HOST_DB_NAME overrides the whole name: a second process of a test
    (tests/hosts/second_process.py) points at the test database the first one created.
    """
    prefix = os.environ.get("SIMILARITY_HOST_DB_PREFIX")
    name = os.environ.get("SIMILARITY_HOST_DB_NAME") or (f"{prefix}_{name}" if prefix else name)
    os.environ["ASSETSITE_DB_NAME"] = name
    config = database_settings(BASE_DIR)
    config["CONN_MAX_AGE"] = 0
    return config
