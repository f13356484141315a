"""Production settings: ``DJANGO_SETTINGS_MODULE=assetsite.settings_production``.

Required environment: ``DJANGO_SECRET_KEY`` (no default here), ``DJANGO_ALLOWED_HOSTS``,
and normally ``DATABASE_URL`` (PostgreSQL with pgvector). Everything else is inherited
from ``assetsite.settings`` (this module imports it and overrides the security settings
and static files). Run with ``manage.py serve --production`` (gunicorn + WhiteNoise +
the worker clusters, see the README). Serve user files from a
separate domain or behind the site's permission-checked views only (see the README).
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from assetsite.settings import *  # noqa: F403

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY to a long random value (python -c 'import secrets; "
        "print(secrets.token_urlsafe(64))')."
    )
DEBUG = False
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS, e.g. assets.example.com")
CSRF_TRUSTED_ORIGINS = [f"https://{host}" for host in ALLOWED_HOSTS]

SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SECURE_SSL_REDIRECT", "1") == "1"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Static files: WhiteNoise serves them from the web server's own processes (no separate
# static host needed), compressed (gzip; brotli when the package is installed) and with
# content-hashed names cached for a year (`immutable`). `manage.py serve --production`
# runs collectstatic first; other deployments run `manage.py collectstatic --noinput`.
STATIC_ROOT = Path(os.environ.get("ASSETSITE_STATIC_ROOT", STATIC_ROOT))  # noqa: F405
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")  # noqa: F405
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],  # noqa: F405
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],  # noqa: F405
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The model a dev run remembered (var/similarity-model) is a try-out convenience: in
# production only SIMILARITY_MODEL (or the hub model) decides, the same on every machine.
SIMILARITY = {**SIMILARITY, "MODEL_NAME": os.environ.get("SIMILARITY_MODEL", "").strip()  # noqa: F405
              or HUB_MODEL}  # noqa: F405
