"""A host whose image model is `photos.Photo` and whose projects are albums."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("photo_host")}
SIMILARITY = {
    "ASSET_MODEL": "photos.Photo",
    "IMAGE_FIELD": "image",
    "PROJECT_MODEL": "photos.Album",
    "PROJECT_LOOKUP": "album",
    "IS_IMAGE": None,
    "MODEL_NAME": MODEL_DIR,
    "ACCESS_POLICY": "tests.hosts.photos.access.AlbumOwnerAccess",
    "BASE_TEMPLATE": "photos/base.html",
}
