"""Deprecated import path: ``similarity.gaps`` moved to ``similarity.search.gaps``.

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.search.gaps import (  # noqa: F401
    GAP_WINDOW,
    Gap,
    largest_gap,
    parse_min_similarity,
    trim,
)

warnings.warn("similarity.gaps is deprecated: import from similarity.search.gaps.",
              DeprecationWarning, stacklevel=2)
