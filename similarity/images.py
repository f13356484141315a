"""Deprecated import path: ``similarity.images`` moved to ``similarity.vectors.images``.

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.vectors.images import (  # noqa: F401
    SAFE_FORMATS,
    SUPPORTED_NAMES,
    ImageDecodeError,
    aspect_ratio,
    check_aspect_ratio,
    load_rgb,
    open_image,
    to_rgb,
)

warnings.warn("similarity.images is deprecated: import from similarity.vectors.images.",
              DeprecationWarning, stacklevel=2)
