"""Safe image decoding shared by thumbnails, upload checks and the embedder.

Pillow's decompression-bomb limit is kept and its warning (between 1x and 2x the
limit) is raised as an error, only the first frame of an animation is used, EXIF
orientation is applied, and every mode is converted to RGB the way a person would expect
(transparency onto white, 16-bit and float images rescaled rather than clipped).
"""

from __future__ import annotations

import warnings
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: The only formats Pillow may even try to parse. Others (EPS through Ghostscript, PSD,
#: FITS, ...) are never opened, however the file is named. AVIF is built into Pillow 11.3+
#: wheels; HEIC/HEIF (phones) comes from pillow-heif, registered below when installed.
SAFE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")  # JPEG opens MPO
SUPPORTED_NAMES = "JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP, TIFF"

try:  # pragma: no branch - an optional dependency
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover
    pass
else:
    register_heif_opener()

#: Vector and document formats people try to upload as images: refused with a reason.
_VECTOR_SIGNATURES = ((b"<svg", "SVG"), (b"<?xml", "SVG/XML"), (b"%!PS", "PostScript/EPS"),
                      (b"%PDF", "PDF"))


#: ``Image.info`` key of the size in the file's header (a draft-decoded JPEG is smaller).
ORIGINAL_SIZE = "similarity_original_size"


class ImageDecodeError(ValueError):
    """The file is not an image we can decode; the message says why, for a person."""


def aspect_ratio(width: int, height: int) -> float:
    """Long side over short side (1.0 for a square; infinite for a zero side)."""
    short, long = sorted((int(width), int(height)))
    return float("inf") if short <= 0 else long / short


def check_aspect_ratio(width: int, height: int, cap: float | None) -> None:
    """Refuse a needle of an image before anything is decoded or resized.

    Resizing the short side to a fixed size multiplies the long side by the same factor:
    a 471-byte 1x100,000 PNG becomes 256x25,600,000 pixels (18 GiB) on the way to a
    224x224 crop. Only the header's size is read, so the refusal costs no memory.
    """
    if cap is None or cap <= 0:
        return
    ratio = aspect_ratio(width, height)
    if ratio > cap:
        shown = "1:∞" if ratio == float("inf") else f"1:{ratio:,.0f}"
        raise ImageDecodeError(
            f"the image is {width}x{height} pixels, an aspect ratio of {shown}; images "
            f"more elongated than 1:{cap:g} are refused (resizing them would take far too "
            "much memory)"
        )


def open_image(
    fp: IO[bytes] | str,
    *,
    draft: tuple[int, int] | None = None,
    formats: tuple[str, ...] = SAFE_FORMATS,
    max_aspect_ratio: float | None = None,
    max_full_pixels: int | None = None,
) -> Image.Image:
    """Open and fully decode the first frame of an image, bombs and truncation refused.

    ``draft`` lets JPEG decoding scale down by DCT (1/2, 1/4, 1/8) while staying at least
    that size: several times faster on large photos, with small pixel differences.
    ``max_aspect_ratio`` refuses, from the header alone, images more elongated than
    1:ratio. ``max_full_pixels`` refuses, from the header, images that would be decoded
    at full size (every format but a draft-scaled JPEG) with more pixels than that.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=formats)
            check_aspect_ratio(image.width, image.height, max_aspect_ratio)
            scaled = draft is not None and image.format == "JPEG"
            if max_full_pixels and not scaled and image.width * image.height > max_full_pixels:
                raise ImageDecodeError(
                    f"the image is {image.width}x{image.height} pixels "
                    f"({image.width * image.height / 1e6:.0f} megapixels); images other than "
                    f"JPEG may have at most {max_full_pixels / 1e6:.0f} megapixels here: "
                    "downscale it or send a JPEG"
                )
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.info[ORIGINAL_SIZE] = image.size  # before draft scaling shrinks it
            if draft is not None and image.format == "JPEG":
                image.draft("RGB", draft)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        limit = Image.MAX_IMAGE_PIXELS
        raise ImageDecodeError(
            f"the image has too many pixels (over {limit:,}); it may be a decompression bomb"
        ) from exc
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        kind = _vector_kind(fp)
        if kind:
            raise ImageDecodeError(
                f"{kind} is a vector or document format, which similarity search cannot read; "
                f"export it as PNG or JPEG (supported: {SUPPORTED_NAMES})"
            ) from exc
        raise ImageDecodeError(
            f"the file is not an image in a supported format ({SUPPORTED_NAMES})"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"the image is corrupt or truncated ({_reason(exc)})") from exc
    return image


def _reason(exc: BaseException) -> str:
    """An error's text for a person, never a server path (OSError puts it in the text)."""
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return exc.strerror or type(exc).__name__
    return str(exc)


def _vector_kind(fp: IO[bytes] | str) -> str | None:
    try:
        if isinstance(fp, str):
            with open(fp, "rb") as handle:
                head = handle.read(512)
        else:
            fp.seek(0)
            head = fp.read(512)
            fp.seek(0)
    except (OSError, ValueError, AttributeError):
        return None
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for signature, kind in _VECTOR_SIGNATURES:
        if head.startswith(signature.lower()) or (kind == "SVG" and b"<svg" in head):
            return kind
    return None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, EXIF orientation applied."""
    try:
        if image.getexif().get(0x0112, 1) != 1:  # exif_transpose copies even when upright
            image = ImageOps.exif_transpose(image)
    except (ValueError, TypeError, OSError, SyntaxError):
        pass  # a broken EXIF block is no reason to refuse the pixels
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _rescale_to_l(image).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        return image.convert("RGB")
    return image.convert("RGB")


def _rescale_to_l(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    finite = array[np.isfinite(array)]
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    elif finite.size:
        low, high = float(finite.min()), float(finite.max())
    else:
        low, high = 0.0, 1.0
    span = high - low or 1.0
    scaled = np.nan_to_num((array - low) / span, nan=0.0, posinf=1.0, neginf=0.0)
    return Image.fromarray((np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")


def load_rgb(
    fp: IO[bytes] | str,
    *,
    draft: tuple[int, int] | None = None,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """Decode the first frame of any supported image to RGB with orientation applied."""
    return to_rgb(open_image(fp, draft=draft, max_aspect_ratio=max_aspect_ratio))
