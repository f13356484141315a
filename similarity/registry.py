"""Deprecated import path: ``similarity.registry`` moved to ``similarity.host`` (``models``, ``scopes``).

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.host.models import (  # noqa: F401
    asset_queryset,
    clear_caches,
    follow_lookup,
    get_asset_model,
    get_image_field,
    get_project_model,
    image_assets,
    image_rule_filter,
    is_image,
    project_lookup,
)
from similarity.host.scopes import (  # noqa: F401
    NO_PROJECT,
    SITE_SCOPE,
    get_project,
    parse_project_pk,
    project_assets,
    project_id_of,
    project_ids_for,
    project_label,
    scope_key,
)

warnings.warn("similarity.registry is deprecated: import from similarity.host.models.",
              DeprecationWarning, stacklevel=2)
