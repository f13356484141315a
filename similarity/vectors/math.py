"""Vectors as NumPy sees them: stored half-precision vectors in, unit float32 out.

Every stored vector (``halfvec``), query and example goes through these, so search, saved
searches, exports and the insight pages all compare the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pgvector import HalfVector


def as_array(vector: Any) -> np.ndarray:
    """A stored vector (pgvector's HalfVector, a list, an array) as float32."""
    return np.asarray(vector.to_list() if hasattr(vector, "to_list") else vector, dtype=np.float32)


def unit(vector: Any) -> np.ndarray:
    """The float32 unit vector along ``vector`` (a zero vector stays zero)."""
    array = as_array(vector)
    return array / (float(np.linalg.norm(array)) or 1.0)


def halfvec(vector: np.ndarray) -> HalfVector:
    """A float vector as the ``halfvec`` column stores it."""
    return HalfVector(np.asarray(vector).astype(np.float16))
