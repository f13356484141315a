"""Deprecated import path: ``similarity.readiness`` moved to ``similarity.embedding.readiness``.

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.embedding.readiness import (  # noqa: F401
    as_dict,
    count_rows,
    get_readiness,
    refresh,
)
from similarity.host.scopes import public_project_key  # noqa: F401

warnings.warn("similarity.readiness is deprecated: import from similarity.embedding.readiness.",
              DeprecationWarning, stacklevel=2)
