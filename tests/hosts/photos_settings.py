"""A host with 8-byte BigAutoField keys: `photos.Photo` in albums owned by users."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("simhost_photos")}
SIMILARITY = {
    "ASSET_MODEL": "photos.Photo",
    "IMAGE_FIELD": "image",
    "PROJECT_MODEL": "photos.Album",
    "PROJECT_LOOKUP": "album",
    "MODEL_NAME": MODEL_DIR,
    "ACCESS_POLICY": "tests.hosts.photos.access.AlbumOwnerAccess",
    "BASE_TEMPLATE": "photos/base.html",
}
