"""Minimal host settings: no `datasets`, no `assetsite` apps; only the database helper."""

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
MEDIA_ROOT = tempfile.mkdtemp(prefix="photo-host-media-")
MEDIA_URL = "/media/"
USE_TZ = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The host's own DRF defaults are permissive; similarity must not be.
REST_FRAMEWORK = {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
Q_CLUSTER = {"name": "photos", "orm": "default", "workers": 1, "timeout": 60, "retry": 90,
             "max_attempts": 2}
MODEL_DIR = os.environ["SIMILARITY_TEST_MODEL"]


def database(name: str) -> dict:
    os.environ["ASSETSITE_DB_NAME"] = name
    config = database_settings(BASE_DIR)
    config["CONN_MAX_AGE"] = 0
    return config
