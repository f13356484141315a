"""Deprecated import path: ``similarity.access`` moved to ``similarity.host.access``.

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.host.access import (  # noqa: F401
    AccessPolicy,
    StaffOnlyAccess,
    filter_visible,
    get_access_policy,
)

warnings.warn("similarity.access is deprecated: import from similarity.host.access.",
              DeprecationWarning, stacklevel=2)
