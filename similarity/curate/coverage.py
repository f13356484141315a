"""Coverage: which images of one dataset are least like anything in the reference
datasets. The active-learning step: what is not yet covered by the labelled data is what
to label next.

Each candidate's score is its cosine similarity to its nearest reference image, exact
(blocked matrix products, ``similarity.vectors.rows.nearest_similarity``: 10,000 x 100,000
x 384 is about 0.4 TFLOP, seconds here), ranked lowest first, ties by row id. An answer is
kept per process for the pages of one list (keyed by both sets and the vectors' version).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.curate import candidates as sets
from similarity.curate.diverse import Diverse, as_picks, k_center
from similarity.curate.inputs import CurationError, group_set, group_sets
from similarity.host.groups import in_groups
from similarity.host.lookups import visible_assets
from similarity.vectors.rows import nearest_similarity

_ENTRIES = 8
_lock = threading.Lock()
_answers: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()


@dataclass
class Uncovered:
    asset_id: Any
    row_id: int
    similarity: float  # to the nearest reference image (-1 when the reference is empty)
    nearest_asset_id: Any  # that reference image (None when the reference is empty)
    asset: Any = None
    nearest_asset: Any = None


@dataclass
class Coverage:
    """The candidates ranked, least covered first: ``order`` are positions into
    ``candidates``, ``similarity`` and ``nearest`` (positions into ``reference``) aligned
    with them. ``item(i)`` gives one ranked entry; a page asks for a slice."""

    candidates: sets.Candidates
    reference: sets.Candidates
    order: np.ndarray
    similarity: np.ndarray
    nearest: np.ndarray
    reference_groups: list[str]

    def __len__(self) -> int:
        return len(self.order)

    def items(self, start: int = 0, stop: int | None = None) -> list[Uncovered]:
        out = []
        for position in self.order[start:stop].tolist():
            where = int(self.nearest[position])
            out.append(Uncovered(
                self.candidates.asset_ids[position], int(self.candidates.row_ids[position]),
                round(float(self.similarity[position]), 6) if where >= 0 else -1.0,
                self.reference.asset_ids[where] if where >= 0 else None))
        return out


def _sets(project_id: str, candidates: Any, references: list[Any], user: Any):
    keys = group_sets(project_id, references, field="reference")
    if not keys:
        raise CurationError(_("Name at least one reference dataset."), "reference")
    group_set(project_id, candidates, field="candidates")
    if str(candidates) in keys:
        raise CurationError(_("The candidates cannot also be a reference dataset."), "reference")
    model = sets.serving_for(project_id)
    visible = visible_assets(project_id, user)
    chosen = sets.read(model, in_groups(visible, [str(candidates)]))
    reference = sets.read(model, in_groups(visible, keys))
    return model, keys, chosen, reference.without(chosen.row_ids)


def rank_coverage(project_id: str, candidates: Any, references: list[Any], *,
                  user: Any = None) -> Coverage:
    """The candidate dataset's images ranked by similarity to their nearest image in the
    reference datasets, lowest (least covered) first; what ``user`` may see of both."""
    project_id = str(project_id)
    model, keys, chosen, reference = _sets(project_id, candidates, references, user)
    key = (project_id, model.model_key, model.version, chosen.digest, reference.digest)
    with _lock:
        found = _answers.get(key)
        if found is not None:
            _answers.move_to_end(key)
    if found is None:
        best, where = nearest_similarity(chosen.vectors, reference.vectors)
        found = (best, where)
        with _lock:
            _answers[key] = found
            while len(_answers) > _ENTRIES:
                _answers.popitem(last=False)
    best, where = found
    order = np.lexsort((chosen.row_ids, best))
    return Coverage(chosen, reference, order, best, where, keys)


def diverse_uncovered(project_id: str, candidates: Any, references: list[Any], count: int, *,
                      user: Any = None) -> Diverse:
    """``count`` diverse images among the candidates, kept away from the reference: the
    first is the least covered image, each next the farthest from the reference and from
    every earlier pick (k-center seeded with the reference)."""
    project_id = str(project_id)
    _model, keys, chosen, reference = _sets(project_id, candidates, references, user)
    positions, distances = k_center(chosen.vectors, count, reference.vectors)
    return Diverse(as_picks(chosen, positions, distances), len(chosen), len(reference),
                   reference_groups=keys)
