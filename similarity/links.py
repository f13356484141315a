"""Deprecated import path: ``similarity.links`` moved to ``similarity.host.links``.

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.host.links import (  # noqa: F401
    asset_label,
    asset_url,
    failed_assets_url,
    file_url,
    results_url,
    selection_url,
    thumbnail_url,
)

warnings.warn("similarity.links is deprecated: import from similarity.host.links.",
              DeprecationWarning, stacklevel=2)
