"""Upload intake: decide the format by content, check caps, store, thumbnail.

Each file is taken in its own transaction. A rejected file raises ``UploadRejected``
naming the file and the reason, and anything written to storage for it is deleted, so
nothing half-written remains.
"""

from __future__ import annotations

import io
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from datasets.models import Asset, Dataset
from similarity.conf import similarity_settings
from similarity.vectors.images import ImageDecodeError, load_rgb, open_image

logger = logging.getLogger(__name__)

# Pillow format -> (extension, content type). Anything else is refused.
IMAGE_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "AVIF": ("avif", "image/avif"),
    "HEIF": ("heic", "image/heic"),
}
THUMBNAIL_SIZE = (400, 400)


class UploadRejected(ValueError):
    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


@dataclass(frozen=True)
class Inspected:
    kind: str
    ext: str
    content_type: str
    width: int | None = None
    height: int | None = None


def clean_filename(name: str) -> str:
    """A display name: no directories, no control characters, bounded length."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/")
    name = os.path.basename(name)
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:255] or "unnamed"


# ISO-BMFF brands of still images (HEIC, AVIF...): an ftyp box, but not a video.
IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"avif", b"avis", b"jxl "}


def sniff_video(head: bytes) -> tuple[str, str] | None:
    """MP4, MOV and WebM by their container signatures."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in IMAGE_BRANDS:
            return None  # left to the image check, which refuses formats we can't decode
        if brand == b"qt  ":
            return "mov", "video/quicktime"
        return "mp4", "video/mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mov", "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:64]:
        return "webm", "video/webm"
    return None


def inspect_upload(fileobj: IO[bytes], filename: str, size: int) -> Inspected:
    """Classify an upload by its bytes and check every limit; raise UploadRejected."""
    if size == 0:
        raise UploadRejected(filename, "the file is empty")
    fileobj.seek(0)
    head = fileobj.read(64)
    fileobj.seek(0)
    video = sniff_video(head)
    if video is not None:
        limit = settings.DATASETS_MAX_VIDEO_BYTES
        if size > limit:
            raise UploadRejected(filename, f"the video is larger than {limit // 2**20} MB")
        return Inspected("video", *video)

    limit = settings.DATASETS_MAX_IMAGE_BYTES
    if size > limit:
        raise UploadRejected(filename, f"the image is larger than {limit // 2**20} MB")
    try:
        # needles (1x100000) are refused from the header: the embedder could not resize them
        image = open_image(fileobj, max_aspect_ratio=similarity_settings.MAX_ASPECT_RATIO)
    except ImageDecodeError as exc:
        raise UploadRejected(filename, str(exc)) from exc
    finally:
        fileobj.seek(0)
    if image.format not in IMAGE_FORMATS:
        raise UploadRejected(
            filename,
            f"{image.format or 'this'} files are not accepted; use JPEG, PNG, WebP, AVIF, HEIC, "
            "GIF, BMP or TIFF images, or MP4, WebM or MOV videos",
        )
    ext, content_type = IMAGE_FORMATS[image.format]
    return Inspected("image", ext, content_type, image.width, image.height)


def make_thumbnail(fileobj: IO[bytes]) -> tuple[bytes, int, int]:
    """A WebP thumbnail of the first frame, EXIF orientation applied; returns size too."""
    fileobj.seek(0)
    image = load_rgb(fileobj, draft=(THUMBNAIL_SIZE[0] * 2, THUMBNAIL_SIZE[1] * 2))
    fileobj.seek(0)
    oriented = image.size
    image.thumbnail(THUMBNAIL_SIZE)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=82)
    return out.getvalue(), oriented[0], oriented[1]


def create_asset(
    dataset: Dataset,
    upload: Any,
    *,
    user: Any = None,
    metadata: dict | None = None,
) -> Asset:
    """Validate and store one uploaded file as an asset, all or nothing.

    Files are written before the row; if the row cannot be saved they are deleted. Call
    it outside an enclosing transaction (views do), since Django has no rollback hook
    that could delete the files when an outer transaction is rolled back later.
    """
    filename = clean_filename(getattr(upload, "name", ""))
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, os.SEEK_END)
        size = upload.tell()
    if metadata is not None and not isinstance(metadata, dict):
        raise UploadRejected(filename, "metadata must be a JSON object")
    inspected = inspect_upload(upload, filename, size)

    asset = Asset(
        dataset=dataset,
        original_filename=filename,
        kind=inspected.kind,
        content_type=inspected.content_type,
        size_bytes=size,
        metadata=metadata or {},
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
    )
    written: list[str] = []
    try:
        if inspected.kind == "image":
            try:
                thumb, width, height = make_thumbnail(upload)
            except ImageDecodeError as exc:
                raise UploadRejected(filename, str(exc)) from exc
            asset.width, asset.height = width, height
            asset.thumbnail.save("thumb.webp", ContentFile(thumb), save=False)
            written.append(asset.thumbnail.name)
        upload.seek(0)
        asset.file.save(f"upload.{inspected.ext}", upload, save=False)
        written.append(asset.file.name)
        with transaction.atomic():
            asset.save()
    except BaseException:
        _delete_files(asset, written)
        raise
    logger.info(
        "Stored %s %r as asset %s in dataset %s", inspected.kind, filename, asset.pk, dataset.pk
    )
    return asset


def _delete_files(asset: Asset, names: list[str]) -> None:
    storage = asset.file.storage
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            logger.warning("Could not delete %s after a failed upload", name)
