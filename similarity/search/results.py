"""What a search answers, and the ways it refuses to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from similarity.conf import similarity_settings
from similarity.errors import SimilarityError
from similarity.models import ProjectReadiness

ORDERS = ("most", "least")


class SearchError(SimilarityError, ValueError):
    """A search that cannot be answered; ``str()`` is the message for the user."""

    code = "invalid"


class NotAnImage(SearchError):
    code = "not_an_image"


class NotEmbedded(SearchError):
    code = "not_embedded"


@dataclass
class Match:
    asset: Any
    similarity: float
    distance: float


@dataclass
class SearchResult:
    query: Any
    order: str
    limit: int
    matches: list[Match]
    exact: bool
    model_key: str
    project_id: str
    scope_size: int
    readiness: ProjectReadiness | None = None
    queries: list[Any] = field(default_factory=list)
    negatives: list[Any] = field(default_factory=list)
    #: The description searched with (text search), "" for image searches.
    text: str = ""

    @property
    def ready(self) -> bool:
        return self.readiness is not None and self.readiness.state == ProjectReadiness.State.READY


def validate(order: str, limit: Any) -> tuple[str, int]:
    """Check ``order`` and ``limit`` as a user sent them; raise SearchError with why."""
    if order not in ORDERS:
        raise SearchError(_("order must be 'most' or 'least'."))
    maximum = int(similarity_settings.MAX_RESULTS)
    try:
        limit = int(limit)
    except (TypeError, ValueError) as exc:
        raise SearchError(_("limit must be a whole number from 1 to %d.") % maximum) from exc
    if not 1 <= limit <= maximum:
        raise SearchError(_("limit must be a whole number from 1 to %d.") % maximum)
    return order, limit
