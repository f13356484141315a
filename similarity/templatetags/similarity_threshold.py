"""Template tags of the threshold slider and the largest-gap marker on results pages."""

from __future__ import annotations

import math
from typing import Any

from django import template

from similarity.search.gaps import GAP_WINDOW, largest_gap

register = template.Library()


@register.simple_tag
def similarity_gap(result: Any) -> dict | None:
    """The largest drop in the result's ranking, with the tiles on either side of it.

    Read from ``result.matches`` (the untrimmed ranking), so the marker stays where it is
    whatever threshold the page applies.
    """
    matches = list(getattr(result, "matches", None) or [])[:GAP_WINDOW]
    gap = largest_gap([match.similarity for match in matches])
    if gap is None:
        return None
    return {
        "gap": gap,
        "position": gap.index + 1,
        "before": matches[gap.index],
        "after": matches[gap.index + 1],
    }


@register.simple_tag
def similarity_slider(result: Any, threshold: Any = None, order: str = "most") -> dict:
    """Slider bounds (two decimals around the scores, within -1..1), its value, and which
    way it reads: "similarity ≥ x" (``min_similarity``) for most similar, "similarity ≤ x"
    (``max_similarity``) for least similar, where it trims the similar end instead.

    ``threshold`` is the bound the view applied (None, or absent from a page's context,
    which templates pass as ""): the slider starts there, else at the end that trims
    nothing (its low end for most similar, its high end for least).
    """
    scores = [match.similarity for match in getattr(result, "matches", None) or []]
    low = max(-1.0, math.floor(min(scores) * 100) / 100) if scores else 0.0
    high = min(1.0, math.ceil(max(scores) * 100) / 100) if scores else 1.0
    least = order == "least"
    applied = isinstance(threshold, int | float) and not isinstance(threshold, bool)
    value = float(threshold) if applied else (high if least else low)
    return {"low": f"{low:.2f}", "high": f"{high:.2f}", "value": f"{value:.2f}",
            "applied": f"{value:.2f}" if applied else "", "least": least,
            "param": "max_similarity" if least else "min_similarity"}
