"""A host with slug-like CharField keys on the asset (Pin) and the project (Board), a
plain FileField for the image, no get_absolute_url, and an owner policy of its own."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("simhost_char")}
SIMILARITY = {
    "ASSET_MODEL": "archive.Pin",
    "IMAGE_FIELD": "artwork",
    "PROJECT_MODEL": "archive.Board",
    "PROJECT_LOOKUP": "board",
    "MODEL_NAME": MODEL_DIR,
    "ACCESS_POLICY": "tests.hosts.archive.access.BoardOwnerAccess",
}
