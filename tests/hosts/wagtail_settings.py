"""A `wagtail start` site (tests/hosts/wagtailsite) with a custom image model, plus
similarity installed the way the README's "Wagtail" section says: two apps and the
model path. Everything else comes from similarity.contrib.wagtail.defaults."""

import tempfile

from tests.hosts.settings_common import BASE_DIR, MODEL_DIR, database

SECRET_KEY = "wagtail-host-test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "similarity.contrib.wagtail",  # before the wagtail apps: it extends their templates
    "tests.hosts.wagtailsite.home",
    "tests.hosts.wagtailsite.images",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "similarity",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "tests.hosts.wagtailsite.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [BASE_DIR / "tests" / "hosts" / "wagtailsite" / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug",
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

DATABASES = {"default": database("wagtail_host")}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # 4-byte keys, custom image model too
WAGTAILIMAGES_IMAGE_MODEL = "images.CustomImage"
WAGTAIL_SITE_NAME = "wagtail host"
WAGTAILADMIN_BASE_URL = "http://localhost"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = tempfile.mkdtemp(prefix="wagtail-host-media-")
MEDIA_URL = "/media/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {"name": "wagtailhost", "orm": "default", "workers": 1, "timeout": 60,
             "retry": 90, "max_attempts": 2}

# The one line similarity needs on a Wagtail site (here: the tiny test model).
SIMILARITY = {"MODEL_NAME": MODEL_DIR, "BATCH_SIZE": 4}
