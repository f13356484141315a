"""Our own tables, one module per part of the app, re-exported here (Django finds them
here, and so do hosts: ``from similarity.models import Embedding``).

The host's tables are never altered: embeddings live beside its assets in a side table.
"""

from similarity.models.embeddings import SCOPE_MAX_LENGTH, Embedding, ProjectReadiness
from similarity.models.insight import DuplicateMark, InsightState, MapBasis, Neighbours
from similarity.models.matches import MatchMap
from similarity.models.notifications import Notification
from similarity.models.queries import QueryImage, SavedSearch, SavedSearchMatch, TextQuery

__all__ = [
    "SCOPE_MAX_LENGTH",
    "DuplicateMark",
    "Embedding",
    "InsightState",
    "MapBasis",
    "MatchMap",
    "Neighbours",
    "Notification",
    "ProjectReadiness",
    "QueryImage",
    "SavedSearch",
    "SavedSearchMatch",
    "TextQuery",
]
