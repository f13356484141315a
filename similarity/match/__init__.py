"""Look closer: where in an image does it match the query?

A search ranks whole-image vectors; DINOv2's patch tokens say which part of a result
carries its similarity. A match map is the cosine of the query's vector (the whole
image's or a region's) to each patch, computed when someone asks (``computing``), kept
per pair, side and model (``MatchMap``), described in words (``grid``) and drawn as an
overlay (``picture``). Searching with a region is a search like any other and lives with
the searches (``search.region``).
"""

from similarity.match.computing import (
    SIDES,
    MatchAnswer,
    MatchError,
    MatchRequest,
    MatchUnavailable,
    compute,
    compute_queued,
    prepare,
)
from similarity.match.grid import describe, peak, score, where
from similarity.match.picture import legend_colours, render_png

__all__ = [
    "SIDES",
    "MatchAnswer",
    "MatchError",
    "MatchRequest",
    "MatchUnavailable",
    "compute",
    "compute_queued",
    "describe",
    "legend_colours",
    "peak",
    "prepare",
    "render_png",
    "score",
    "where",
]
