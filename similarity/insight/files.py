"""File facts of a scope's images: SHA-256, size and pixel dimensions.

Byte-identical duplicates are found by hash, and a duplicate group suggests which image to
keep by pixels, then file size. Hashing reads every file once, so it runs in the insight
task within its time budget, never on a page view.
"""

from __future__ import annotations

import hashlib
import logging
import time

from PIL import Image

from similarity.host.files import image_file
from similarity.host.models import get_asset_model
from similarity.models import Neighbours

logger = logging.getLogger(__name__)


def hash_missing_files(
    project_id: str, model_key: str, *, chunk: int = 200, deadline: float = float("inf"),
) -> tuple[int, bool]:
    """SHA-256, size and pixel dimensions of files not hashed yet (byte-identical groups).

    Returns how many were hashed and whether none is left (False: the deadline came)."""
    manager = get_asset_model()._default_manager
    hashed = 0
    while True:
        rows = list(
            Neighbours.objects.filter(project_id=project_id, model_key=model_key, file_hash="")
            .values_list("embedding_id", "embedding__asset_id")[:chunk]
        )
        if not rows:
            return hashed, True
        if hashed and time.monotonic() >= deadline:
            return hashed, False
        assets = manager.in_bulk([asset_id for _, asset_id in rows])
        updates, unreadable = [], 0
        for row_id, asset_id in rows:
            facts = {"file_hash": "-", "file_size": None, "width": None, "height": None}
            asset = assets.get(asset_id)
            file = image_file(asset) if asset is not None else None
            try:
                if file:
                    digest = hashlib.sha256()
                    size = 0
                    with file.open("rb") as handle:
                        for part in iter(lambda h=handle: h.read(1 << 20), b""):
                            digest.update(part)
                            size += len(part)
                        handle.seek(0)
                        facts.update(file_hash=digest.hexdigest(), file_size=size)
                        with Image.open(handle) as image:  # the header only
                            facts.update(width=image.width, height=image.height)
            except Exception:  # unreadable or missing: no facts, never a failed stage
                unreadable += 1
            updates.append(Neighbours(embedding_id=row_id, **facts))
        if unreadable:
            logger.warning("Insight: %d files of scope %s could not be read", unreadable,
                           project_id)
        Neighbours.objects.bulk_update(updates, ["file_hash", "file_size", "width", "height"])
        hashed += len(updates)
