"""DINOv2's input: decode, short side to 256 (bicubic), centre crop 224, ImageNet mean/std.

A plain PIL + NumPy path equal to the ``transformers`` DINOv2 image processor but about
1.4x faster; JPEGs may be decoded in draft mode (DCT scaling), which is several times
faster on large photos (see the tests and bench/embed.py for the measured difference).
The stored images, outside query images and the worker's task payloads all go through
these functions, so every vector is made from the same pixels.
"""

from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image

from similarity.conf import similarity_settings
from similarity.vectors.images import load_rgb

RESIZE_SHORT = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Draft decoding keeps at least this size, so the bicubic resize still antialiases.
DRAFT_SIZE = (RESIZE_SHORT, RESIZE_SHORT)


#: Above this many pixels after the resize, only the region the crop shows is resized.
EXACT_RESIZE_PIXELS = 2**22  # 12 MiB of RGB: every shape up to 1:64


def resize_and_crop(image: Image.Image) -> Image.Image:
    """Short side to 256 (bicubic), then the centre 224x224, as DINOv2 was trained.

    Resizing the whole image scales the long side by the short side's factor, so its cost
    grows with the aspect ratio: an 8000x20 banner becomes 102,400x256 pixels, a 1x100,000
    strip 256x25,600,000 (18 GiB). Up to EXACT_RESIZE_PIXELS the whole image is resized
    (pixel for pixel what the ``transformers`` processor gives); beyond, PIL resizes just
    the source region the crop shows (``box``: the same sampling positions, at most a few
    grey levels apart where PIL orders its two passes differently), whatever the shape.
    """
    width, height = image.size
    if width <= height:
        size = (RESIZE_SHORT, max(RESIZE_SHORT, int(RESIZE_SHORT * height / width)))
    else:
        size = (max(RESIZE_SHORT, int(RESIZE_SHORT * width / height)), RESIZE_SHORT)
    left = (size[0] - CROP) // 2
    top = (size[1] - CROP) // 2
    if size[0] * size[1] <= EXACT_RESIZE_PIXELS:
        image = image.resize(size, Image.Resampling.BICUBIC)
        return image.crop((left, top, left + CROP, top + CROP))
    x_scale, y_scale = width / size[0], height / size[1]
    box = (left * x_scale, top * y_scale, (left + CROP) * x_scale, (top + CROP) * y_scale)
    return image.resize((CROP, CROP), Image.Resampling.BICUBIC, box=box)


def preprocess(image: Image.Image) -> np.ndarray:
    """An RGB PIL image -> normalised float32 array of shape (3, 224, 224)."""
    array = np.asarray(resize_and_crop(image), dtype=np.float32)
    array = array * np.float32(1 / 255)
    array = (array - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_and_preprocess(fp: IO[bytes] | str, *, draft: bool = True) -> np.ndarray:
    """Decode (first frame, EXIF orientation, any mode) and preprocess one image.

    Any aspect ratio costs bounded memory (see ``resize_and_crop``); a host may still
    refuse elongated images with MAX_ASPECT_RATIO (off by default).
    """
    image = load_rgb(fp, draft=DRAFT_SIZE if draft else None,
                     max_aspect_ratio=similarity_settings.MAX_ASPECT_RATIO)
    return preprocess(image)




def model_crop(rgb: Image.Image) -> bytes:
    """The model's 224x224 RGB input as raw bytes (150 KB): what a worker task carries."""
    return np.asarray(resize_and_crop(rgb), dtype=np.uint8).tobytes()


def pixels_from_crop(crop: bytes) -> np.ndarray:
    """Raw crop bytes -> the normalised (1, 3, 224, 224) batch (same maths as preprocess)."""
    array = np.frombuffer(crop, dtype=np.uint8).reshape(CROP, CROP, 3).astype(np.float32)
    array = (array * np.float32(1 / 255) - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))[None]


#: The whole-image view of match maps: short side SHORT_VIEW, long side at most LONG_VIEW.
SHORT_VIEW = 224
LONG_VIEW = 448


def full_view(rgb: Image.Image, patch: int = 14) -> np.ndarray:
    """The whole image (no centre crop) as a normalised (1, 3, H, W) batch whose sides are
    multiples of ``patch``: the short side about 224 px, the long side at most 448.

    Patch maps must cover what the user sees, including the sides the square crop of the
    vectors leaves out; a side rounds to whole patches (at most half a patch of stretch).
    """
    width, height = rgb.size
    scale = SHORT_VIEW / max(1, min(width, height))
    scale = min(scale, LONG_VIEW / max(1, max(width, height)))
    size = tuple(max(patch, round(side * scale / patch) * patch) for side in (width, height))
    array = np.asarray(rgb.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    array = (array * np.float32(1 / 255) - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))[None]
