"""Curating training data: diverse subsets, what a labelled set does not cover yet.

The loop behind it: production sends back unusual images, the team finds their
look-alikes, and then decides what to label next. ``diverse`` picks images unlike each
other (k-center); ``coverage`` ranks a dataset's images by how unlike the labelled
datasets they are. Both read the same unit vectors as search, through the same access
policy; leakage between datasets lives with the insight stage, whose neighbour lists it
reads.
"""

from similarity.curate.coverage import Coverage, Uncovered, diverse_uncovered, rank_coverage
from similarity.curate.diverse import Diverse, Pick, fill_assets, k_center, pick_diverse
from similarity.curate.inputs import DEFAULT_COUNT, MAX_COUNT, CurationError, parse_count

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "Coverage",
    "CurationError",
    "Diverse",
    "Pick",
    "Uncovered",
    "diverse_uncovered",
    "fill_assets",
    "k_center",
    "parse_count",
    "pick_diverse",
    "rank_coverage",
]
