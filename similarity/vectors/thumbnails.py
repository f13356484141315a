"""Small thumbnails of host images, generated once and cached in the host's storage.

Results pages and API answers show up to 100 images; sending each original (often
several megabytes) would make a results page weigh hundreds of megabytes. A thumbnail is
made on first request through the same safe decoder as the embedder (bombs, modes, EXIF
orientation), stored under a name derived from the asset key and its file name (a new
file gets a new thumbnail, nothing to invalidate), and served by an access-checked view.
Hosts with their own renditions (Wagtail) set ``THUMBNAIL_URL`` instead.
"""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from similarity.host.files import image_file
from similarity.vectors.images import ImageDecodeError, load_rgb

logger = logging.getLogger(__name__)

#: Longest side of a thumbnail, in pixels (tiles are shown at up to 160 CSS px; 2x screens).
SIZE = 320
FOLDER = "similarity-thumbnails"


def thumbnail_name(asset: Any) -> str:
    source = image_file(asset).name or ""
    digest = hashlib.sha256(f"{asset._meta.label}:{asset.pk}:{source}".encode()).hexdigest()
    return f"{FOLDER}/{digest[:2]}/{digest[2:34]}.jpg"


def get_thumbnail(asset: Any) -> bytes:
    """JPEG bytes of the asset's thumbnail, made and stored on first use.

    Raises ImageDecodeError (the message says why) or OSError when the file is missing.
    """
    name = thumbnail_name(asset)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    with image_file(asset).open("rb") as handle:
        image = load_rgb(handle, draft=(SIZE, SIZE))
    image.thumbnail((SIZE, SIZE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    data = out.getvalue()
    try:
        default_storage.save(name, ContentFile(data))
    except OSError:  # a read-only or racing storage: serve it anyway
        logger.warning("Could not store the thumbnail %s", name, exc_info=True)
    return data


__all__ = ["SIZE", "ImageDecodeError", "get_thumbnail", "thumbnail_name"]
