"""A region of an image to search with: the crack in the casing, not the whole casing.

A region is four fractions of the image as a person sees it (EXIF rotation applied):
``[x, y, width, height]``, each 0 to 1, the box inside the image, and at least
``MIN_SIDE`` pixels of the original on each side (a smaller box is upsampled to the
model's 224 px input from almost nothing, and its vector says little). The crop is then
embedded exactly like an outside image of those pixels (``search.outside``), so a region
query and a query with the same crop saved as a file are the same search.

Large JPEGs are decoded with DCT scaling as far as the crop still gets the model's
256 px from real pixels, so a region of a 12 MP photo does not decode all 12 MP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image

from similarity.search.results import SearchError
from similarity.vectors.images import SAFE_FORMATS
from similarity.vectors.preprocess import RESIZE_SHORT

#: The smallest side of a region, in pixels of the original image.
MIN_SIDE = 32
#: Rounding slack on the image's edges (fractions a browser computes from pixels).
EDGE_SLACK = 1e-6


class RegionError(SearchError):
    """A region that does not describe a searchable part of the image; says why."""

    code = "bad_region"


@dataclass(frozen=True)
class Region:
    """A box in fractions of the image: left, top, width, height."""

    x: float
    y: float
    width: float
    height: float

    def as_list(self) -> list[float]:
        return [self.x, self.y, self.width, self.height]

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in pixels of an image of that size (PIL's left, top, right, bottom)."""
        left, top = round(self.x * width), round(self.y * height)
        right = min(width, max(left + 1, round((self.x + self.width) * width)))
        bottom = min(height, max(top + 1, round((self.y + self.height) * height)))
        return left, top, right, bottom

    def pixels(self, width: int, height: int) -> tuple[int, int]:
        """Its width and height in pixels of an image of that size."""
        left, top, right, bottom = self.box(width, height)
        return right - left, bottom - top

    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RegionError(f"The region's {name} must be a number, not {json.dumps(value)[:40]}.")
    try:
        number = float(value)
    except ValueError:
        raise RegionError(f"The region's {name} must be a number, not “{str(value)[:40]}”.") from None
    if not math.isfinite(number):
        raise RegionError(f"The region's {name} must be a finite number.")
    return number


def _parts(value: Any) -> Sequence[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise RegionError("The region must be four numbers: [x, y, width, height].") from None
        else:
            value = [part.strip() for part in text.split(",")] if text else []
    if not isinstance(value, list | tuple):
        raise RegionError("The region must be four numbers: [x, y, width, height], in "
                          "fractions of the image (0 to 1).")
    return value


def parse_region(value: Any) -> Region:
    """A region from JSON's ``[x, y, w, h]`` or a form's ``"x,y,w,h"``; RegionError
    names the problem (wrong length, not numbers, outside the image)."""
    parts = _parts(value)
    if len(parts) != 4:
        raise RegionError(f"The region must be four numbers [x, y, width, height], "
                          f"not {len(parts)}.")
    x, y, width, height = (_number(part, name) for part, name in
                           zip(parts, ("x", "y", "width", "height"), strict=True))
    if width <= 0 or height <= 0:
        raise RegionError("The region's width and height must be more than 0.")
    if x < -EDGE_SLACK or y < -EDGE_SLACK:
        raise RegionError("The region starts outside the image: x and y are fractions of "
                          "the image, from 0 to 1.")
    if x + width > 1 + EDGE_SLACK:
        raise RegionError(f"The region reaches outside the image: x + width is "
                          f"{x + width:.3g} (at most 1).")
    if y + height > 1 + EDGE_SLACK:
        raise RegionError(f"The region reaches outside the image: y + height is "
                          f"{y + height:.3g} (at most 1).")
    x, y = max(0.0, x), max(0.0, y)
    return Region(x, y, min(width, 1 - x), min(height, 1 - y))


def check_size(region: Region, width: int, height: int, name: str) -> None:
    """Refuse a box with a side under MIN_SIDE pixels of the ``width`` x ``height`` original."""
    shown_width, shown_height = region.pixels(width, height)
    if min(shown_width, shown_height) < MIN_SIDE:
        raise RegionError(
            f"The region of “{name}” is {shown_width}x{shown_height} pixels of the "
            f"{width}x{height} image; draw a box at least {MIN_SIDE} pixels on each side."
        )


def header_size(fp: IO[bytes]) -> tuple[tuple[int, int], bool] | None:
    """The stored size and whether EXIF rotates it by 90°, from the header alone; None
    for a file that does not open (the decoder's checks then say why)."""
    position = fp.tell()
    try:
        with Image.open(fp, formats=SAFE_FORMATS) as image:
            try:
                rotated = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            except Exception:  # a broken EXIF block: the pixels are still usable
                rotated = False
            return image.size, rotated
    except Exception:  # any refusal is the full decoder's to explain
        return None
    finally:
        fp.seek(position)


def draft_size(region: Region, stored: tuple[int, int], rotated: bool) -> tuple[int, int]:
    """The smallest decode (for ``Image.draft``) that keeps the crop's short side at
    the model's 256 px from real pixels: the JPEG's DCT scaling then skips the rest."""
    width, height = (stored[1], stored[0]) if rotated else stored
    short = max(1, min(region.pixels(width, height)))
    scale = min(1.0, RESIZE_SHORT / short)
    return max(1, math.ceil(stored[0] * scale)), max(1, math.ceil(stored[1] * scale))


def crop(rgb: Image.Image, region: Region) -> Image.Image:
    """The region's pixels of a decoded image (any decoded size of the same picture)."""
    return rgb.crop(region.box(rgb.width, rgb.height))
