"""A match map as a picture: a semi-transparent colour overlay the size of the image.

The grid is stretched over the whole image (bilinear, like the eye expects a heat map),
coloured from dark violet (the weakest match of this image) to yellow (its strongest),
weak parts mostly transparent so the image shows through. Colours are relative to the
image's own range; the legend beside it gives the cosines at both ends.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

#: The longest side of an overlay (the size thumbnails are shown at, and a little more).
OVERLAY_SIDE = 320
#: Anchors of the colour scale (an inferno-like ramp: readable on photos, and in grey).
_ANCHORS = np.array([(0, 0, 4), (66, 10, 104), (147, 38, 103), (221, 81, 58), (252, 165, 10),
                     (252, 255, 164)], dtype=np.float32)
#: Opacity of the weakest and the strongest cell.
_ALPHA = (0.12, 0.78)


def _ramp(t: np.ndarray) -> np.ndarray:
    """t in [0, 1] -> RGB on the colour scale (linear between anchors)."""
    position = np.clip(t, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(position.astype(np.int32), len(_ANCHORS) - 2)
    fraction = (position - low)[..., None]
    return _ANCHORS[low] * (1 - fraction) + _ANCHORS[low + 1] * fraction


def overlay_size(width: int, height: int) -> tuple[int, int]:
    """An overlay with the image's own proportions, so it covers a thumbnail exactly
    however the page crops it (the same ``object-fit`` as the thumbnail)."""
    scale = OVERLAY_SIDE / max(1, width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def normalised(grid: np.ndarray) -> np.ndarray:
    low, high = float(grid.min()), float(grid.max())
    return (grid - low) / (high - low) if high > low else np.zeros_like(grid)


def render_png(grid: np.ndarray, width: int, height: int) -> bytes:
    """The overlay PNG (RGBA) of a grid, for an image of ``width`` x ``height``."""
    size = overlay_size(width, height)
    t = np.asarray(Image.fromarray(normalised(grid).astype(np.float32), "F")
                   .resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    rgba = np.empty((*t.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.round(_ramp(t)).astype(np.uint8)
    rgba[..., 3] = np.round(255 * (_ALPHA[0] + (_ALPHA[1] - _ALPHA[0]) * np.clip(t, 0, 1)))
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, "PNG", optimize=False, compress_level=3)
    return out.getvalue()


def legend_colours(steps: int = 5) -> list[str]:
    """CSS colours of the scale, weakest first (the page draws its legend with them)."""
    colours = np.round(_ramp(np.linspace(0.0, 1.0, steps))).astype(int)
    return ["#" + "".join(f"{int(c):02x}" for c in colour) for colour in colours]
