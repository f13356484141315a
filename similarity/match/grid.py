"""A match map's numbers: the cosine of a query vector to each patch, and where it peaks.

Patch tokens and the query vector are unit vectors of the same model and layer, so each
cell is a cosine similarity on the search's own scale. The description is the map's text
alternative: where the strongest match is, in words a screen reader can say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A peak this close to the middle (in fractions of each side) is "in the centre".
CENTRE = 1 / 6


@dataclass(frozen=True)
class Peak:
    row: int
    column: int
    #: The peak cell's centre in fractions of the image (x from the left, y from the top).
    x: float
    y: float
    value: float


def score(vector: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """(rows, columns, dims) unit patch tokens x a unit query vector -> (rows, columns)
    float32 cosines."""
    query = np.asarray(vector, dtype=np.float32)
    query = query / max(float(np.linalg.norm(query)), 1e-12)
    return np.asarray(tokens, dtype=np.float32) @ query


def peak(grid: np.ndarray) -> Peak:
    row, column = np.unravel_index(int(np.argmax(grid)), grid.shape)
    rows, columns = grid.shape
    return Peak(int(row), int(column), (column + 0.5) / columns, (row + 0.5) / rows,
                float(grid[row, column]))


def where(x: float, y: float) -> str:
    """A place in an image, in words: "the upper left quarter", "the centre"."""
    if abs(x - 0.5) < CENTRE and abs(y - 0.5) < CENTRE:
        return "the centre"
    vertical = "upper" if y < 0.5 else "lower"
    horizontal = "left" if x < 0.5 else "right"
    if abs(x - 0.5) < CENTRE:
        return f"the {vertical} middle"
    if abs(y - 0.5) < CENTRE:
        return f"the middle {horizontal}"
    return f"the {vertical} {horizontal} quarter"


def describe(grid: np.ndarray) -> str:
    """The text alternative of a map: where it peaks, and how strong and spread it is."""
    top = peak(grid)
    low = float(grid.min())
    return (f"Strongest match in {where(top.x, top.y)} (similarity {top.value:.2f} there, "
            f"{low:.2f} at the weakest).")
