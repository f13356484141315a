"""A host with UUID keys on both the asset (Scan) and the project (Workspace), and a
membership policy of its own."""

from tests.hosts.settings_common import *  # noqa: F403
from tests.hosts.settings_common import MODEL_DIR, database

DATABASES = {"default": database("simhost_uuid")}
SIMILARITY = {
    "ASSET_MODEL": "archive.Scan",
    "IMAGE_FIELD": "scan",
    "PROJECT_LOOKUP": "workspace",
    "MODEL_NAME": MODEL_DIR,
    "ACCESS_POLICY": "tests.hosts.archive.access.WorkspaceMemberAccess",
}
