"""A host with no projects at all: the whole site is one scope; default (staff) access."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("simhost_sitewide")}
SIMILARITY = {
    "ASSET_MODEL": "photos.Photo",
    "IMAGE_FIELD": "image",
    "PROJECT_LOOKUP": None,
    "MODEL_NAME": MODEL_DIR,
    "BASE_TEMPLATE": "photos/base.html",
}
