"""The REST API (Django REST framework), one module per resource; ``similarity.api_urls``
routes them. Views are thin: they validate, call the layer below, and answer its errors
(``base.AnswersErrors``).
"""

from similarity.api.base import (
    AssetSummarySerializer,
    IsActiveUser,
    SearchThrottle,
    asset_serializer_class,
)
from similarity.api.search import ProjectSimilarView, SimilarView

__all__ = [
    "AssetSummarySerializer",
    "IsActiveUser",
    "ProjectSimilarView",
    "SearchThrottle",
    "SimilarView",
    "asset_serializer_class",
]
