"""Deprecated import path: ``similarity.embedders`` moved to ``similarity.vectors``
(``embedder``, ``model_keys``, ``preprocess``).

Kept so hosts' imports and settings naming it go on working; importing it warns with
``DeprecationWarning``. It will be removed in a future release.
"""

import warnings

from similarity.vectors.embedder import (  # noqa: F401
    Dinov2Embedder,
    forget_loaded_models,
    get_embedder,
    pick_device,
    quantize_int8,
)
from similarity.vectors.model_keys import (  # noqa: F401
    PRECISIONS,
    ModelLoadError,
    base_model_key,
    current_model_key,
    current_precision,
    model_problem,
    precision_suffix,
)
from similarity.vectors.preprocess import (  # noqa: F401
    CROP,
    DRAFT_SIZE,
    MEAN,
    RESIZE_SHORT,
    STD,
    load_and_preprocess,
    preprocess,
    resize_and_crop,
)

warnings.warn("similarity.embedders is deprecated: import from similarity.vectors.",
              DeprecationWarning, stacklevel=2)
