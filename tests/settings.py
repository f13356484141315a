"""Test settings: the real embedded PostgreSQL, a tiny random DINOv2 loaded from disk.

The checkpoint is written once per machine with ``save_pretrained`` and loaded by the
production ``from_pretrained`` path; nothing reaches the network.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("ASSETSITE_DB_NAME", "assetsite_tests")
os.environ.setdefault(
    "ASSETSITE_MEDIA_ROOT", tempfile.mkdtemp(prefix="assetsite-test-media-")
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from assetsite.settings import *  # noqa: F403
from assetsite.settings import SIMILARITY

TEST_MODEL_DIR = Path(
    os.environ.get("SIMILARITY_TEST_MODEL", Path(tempfile.gettempdir()) / "similarity-tiny-dinov2")
)
if not (TEST_MODEL_DIR / "model.safetensors").exists():
    from similarity.testing import make_dinov2_checkpoint

    make_dinov2_checkpoint(TEST_MODEL_DIR)
os.environ["SIMILARITY_TEST_MODEL"] = str(TEST_MODEL_DIR)

SIMILARITY = {
    **SIMILARITY,
    "MODEL_NAME": os.environ.get("SIMILARITY_TEST_WORKER_MODEL", str(TEST_MODEL_DIR)),
    "BATCH_SIZE": 4,
    "CLAIM_SECONDS": int(os.environ.get("SIMILARITY_TEST_CLAIM_SECONDS", "300")),
    # a worker started with a tiny text model (tests/test_text_search_worker.py)
    "TEXT_MODEL_NAME": os.environ.get("SIMILARITY_TEST_TEXT_MODEL") or None,
}
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405  (live-server threads must not linger)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
