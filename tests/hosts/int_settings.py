"""A host with 4-byte AutoField keys: pictures in folders in libraries (two-hop project
path), no get_absolute_url on the asset, and similarity's default staff-only policy."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("simhost_int")}
SIMILARITY = {
    "ASSET_MODEL": "archive.Picture",
    "IMAGE_FIELD": "picture",
    "PROJECT_LOOKUP": "folder__library",
    "MODEL_NAME": MODEL_DIR,
}
