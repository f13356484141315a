"""Where "similar" ends: the largest drop between consecutive scores of a ranking.

A ranked list of cosine similarities usually falls gently, then drops once past the images
that really look like the query. The results page marks that drop so a user sees where to
stop reading (and where to set the threshold). Pure functions: the views, the API and
the templates call them, the tests check them against NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.search.results import SearchError

#: Only the first this-many scores are examined (the page shows at most 100).
GAP_WINDOW = 100


@dataclass(frozen=True)
class Gap:
    """The drop between ``index`` and ``index + 1`` (0-based positions in the ranking)."""

    index: int
    before: float
    after: float

    @property
    def size(self) -> float:
        return abs(self.before - self.after)


def largest_gap(scores: Sequence[float], window: int = GAP_WINDOW) -> Gap | None:
    """The largest absolute difference between consecutive scores in the first ``window``.

    Works for either order (most similar falls, least similar rises). Ties go to the
    earliest gap. None for fewer than two scores, or when all scores are equal (no drop).
    """
    values = np.asarray(list(scores)[:window], dtype=np.float64)
    if values.size < 2:
        return None
    diffs = np.abs(np.diff(values))
    index = int(np.argmax(diffs))
    if diffs[index] <= 0:
        return None
    return Gap(index=index, before=float(values[index]), after=float(values[index + 1]))


def trim(matches: Sequence, min_similarity: float | None,
         max_similarity: float | None = None) -> list:
    """The matches with ``min_similarity <= similarity <= max_similarity`` (either bound
    None: no bound). Most similar first keeps the top with a minimum; least similar first
    keeps its own top, the least alike, with a maximum."""
    if min_similarity is None and max_similarity is None:
        return list(matches)
    low = -2.0 if min_similarity is None else min_similarity
    high = 2.0 if max_similarity is None else max_similarity
    return [match for match in matches if low <= match.similarity <= high]


def parse_bound(raw: Any, name: str = "min_similarity") -> float | None:
    """``min_similarity`` (or ``max_similarity``) as a user sent it, to a page or the API:
    a cosine from -1 to 1, or None when absent. Anything else is refused (SearchError,
    saying what is allowed): a page that quietly showed every result for a mistyped value
    would look like a threshold that does nothing.
    """
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not -1.0 <= value <= 1.0:  # NaN fails too
        raise SearchError(_("%(name)s must be a number from -1 to 1.") % {"name": name})
    return value


def parse_min_similarity(raw: Any) -> float | None:
    """``parse_bound`` of ``min_similarity``."""
    return parse_bound(raw, "min_similarity")


def parse_max_similarity(raw: Any) -> float | None:
    """``parse_bound`` of ``max_similarity`` (the threshold of least-similar pages)."""
    return parse_bound(raw, "max_similarity")
