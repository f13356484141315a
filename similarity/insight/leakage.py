"""Leakage between two datasets of a project: every pair across them at or above a
similarity threshold ("test" images that are copies or near-copies of "train" images).

Read from the neighbour lists the insight stage keeps current, never a fresh all-pairs
scan. Why that is complete: each image's list holds its K nearest images of the whole
project, so a list whose K-th similarity is below the threshold names *every* image at or
above it. Only the lists that are full at the threshold (K-th similarity >= threshold: an
image with more than K near-copies) can miss a pair; those rows alone are compared exactly
with the other dataset. Reading the smaller dataset's lists suffices, since a pair is in
either image's complete list. Byte-identical files (same SHA-256, hashed by the stage)
come first, then the rest by similarity.

Incremental by construction: an upload of 100 images costs the stage's incremental pass
(the new images' lists, and the old lists they enter) and nothing more here; a report
reads |smaller dataset| lists plus one product per saturated row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from similarity.errors import SimilarityError
from similarity.host.groups import group_choices, in_groups
from similarity.host.lookups import visible_assets
from similarity.insight.reading import quantise_threshold, ready_state
from similarity.models import Embedding, Neighbours, ProjectReadiness
from similarity.vectors.rows import row_vectors


class LeakageError(SimilarityError):
    code = "invalid"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def extra(self) -> dict[str, Any]:
        return {"field": self.field}


@dataclass
class Pair:
    a_asset_id: Any
    b_asset_id: Any
    a_row: int
    b_row: int
    similarity: float
    identical: bool
    a_asset: Any = None
    b_asset: Any = None


@dataclass
class Leakage:
    pairs: list[Pair]  # byte-identical first, then by similarity, highest first
    a_size: int  # analysed images of each side the user may see
    b_size: int
    threshold: float
    rescanned: int  # rows whose list was full at the threshold, compared exactly

    @property
    def identical(self) -> int:
        return sum(1 for pair in self.pairs if pair.identical)

    @property
    def b_copies(self) -> int:
        """Images of the second dataset with at least one copy in the first."""
        return len({pair.b_row for pair in self.pairs})


def check_groups(project_id: str, a: Any, b: Any) -> tuple[str, str]:
    keys = {key for key, _label in group_choices(project_id)}
    for field, value in (("a", a), ("b", b)):
        if value in (None, "") or str(value) not in keys:
            raise LeakageError(_("%(field)s must name a dataset of this project with images.")
                               % {"field": field}, field)
    if str(a) == str(b):
        raise LeakageError(_("Choose two different datasets."), "b")
    return str(a), str(b)


def _analysed(project_id: str, model_key: str, group: str, user: Any) -> QuerySet:
    """Our rows of the group's images the user may see that have a neighbour list."""
    assets = in_groups(visible_assets(project_id, user), [group])
    return Embedding.objects.filter(project_id=project_id, model_key=model_key,
                                    status=Embedding.Status.DONE, asset_id__in=assets.values("pk"),
                                    neighbours__isnull=False)


def leakage(project_id: str, a: Any, b: Any, threshold: float, *, user: Any = None) -> Leakage:
    """Pairs of (an image of ``a``, an image of ``b``) with cosine similarity at least
    ``threshold``, among the analysed images ``user`` may see."""
    project_id = str(project_id)
    a, b = check_groups(project_id, a, b)
    threshold = quantise_threshold(threshold)
    state = ready_state(project_id)
    key = state.model_key
    analysed_a, analysed_b = _analysed(project_id, key, a, user), _analysed(project_id, key, b, user)
    rows_a = dict(analysed_a.values_list("pk", "asset_id"))
    rows_b = dict(analysed_b.values_list("pk", "asset_id"))
    if not rows_a or not rows_b:
        return Leakage([], len(rows_a), len(rows_b), threshold, 0)
    flipped = len(rows_b) < len(rows_a)
    small, other = (rows_b, rows_a) if flipped else (rows_a, rows_b)
    small_rows = (analysed_b if flipped else analysed_a).values("pk")
    other_ids = np.fromiter(other, dtype=np.int64, count=len(other))
    other_ids.sort()
    t = np.float32(threshold)
    found: dict[tuple[int, int], float] = {}
    saturated = []
    for row, neighbour_ids, sims, kth in Neighbours.objects.filter(
        project_id=project_id, model_key=key, embedding_id__in=small_rows
    ).values_list("embedding_id", "neighbour_ids", "similarities", "kth"):
        if np.float32(kth) >= t:
            saturated.append(row)
        for other_row, sim in zip(neighbour_ids, sims, strict=True):
            if np.float32(sim) >= t and other_row in other:
                found[(row, other_row)] = float(sim)
    if saturated:
        for (row, other_row), sim in _rescan(project_id, key, np.asarray(sorted(saturated)),
                                             other_ids, t).items():
            found.setdefault((row, other_row), sim)
    identical = _same_files(project_id, key, small, other)
    missing = [pair for pair in identical if pair not in found]
    if missing:
        found.update(_similarities(project_id, key, missing))
    pairs = []
    for (row, other_row), sim in found.items():
        a_row, b_row = (other_row, row) if flipped else (row, other_row)
        pairs.append(Pair(rows_a[a_row], rows_b[b_row], a_row, b_row, round(min(sim, 1.0), 6),
                          (row, other_row) in identical))
    pairs.sort(key=lambda p: (not p.identical, -p.similarity, p.b_row, p.a_row))
    return Leakage(pairs, len(rows_a), len(rows_b), threshold, len(saturated))


def _version(project_id: str) -> tuple[Any, int]:
    state = ProjectReadiness.objects.filter(project_id=project_id).first()
    return ((state.updated, state.embedded) if state else (None, 0)), (state.embedded if state else 0)


def _dims(rows: np.ndarray) -> int:
    return int(Embedding.objects.filter(pk=int(rows[0])).values_list("dims", flat=True).first())


def _rescan(project_id: str, key: str, rows: np.ndarray, other_ids: np.ndarray,
            t: np.float32) -> dict[tuple[int, int], float]:
    """Exact pairs of rows whose list was full at the threshold, against the other side."""
    version, scope_rows = _version(project_id)
    dims = _dims(rows)
    rows, queries = row_vectors(project_id, key, dims, rows, version=version, scope_rows=scope_rows)
    others, columns = row_vectors(project_id, key, dims, other_ids, version=version,
                                  scope_rows=scope_rows)
    out: dict[tuple[int, int], float] = {}
    for start in range(0, len(rows), 1024):
        tile = queries[start:start + 1024] @ columns.T
        hit_rows, hit_columns = np.nonzero(tile >= t)
        for i, j in zip(hit_rows.tolist(), hit_columns.tolist(), strict=True):
            out[(int(rows[start + i]), int(others[j]))] = float(tile[i, j])
    return out


def _same_files(project_id: str, key: str, small: dict, other: dict) -> set[tuple[int, int]]:
    """(small-side row, other-side row) pairs whose files have the same SHA-256."""
    scope = Neighbours.objects.filter(project_id=project_id, model_key=key)
    repeated = (scope.exclude(file_hash__in=["", "-"]).values("file_hash")
                .annotate(n=Count("pk")).filter(n__gt=1).values("file_hash"))
    by_hash: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for row, digest in scope.filter(file_hash__in=repeated).values_list("embedding_id", "file_hash"):
        if row in small:
            by_hash[digest][0].append(row)
        elif row in other:
            by_hash[digest][1].append(row)
    return {(row, other_row) for mine, theirs in by_hash.values()
            for row in mine for other_row in theirs}


def _similarities(project_id: str, key: str, pairs: list[tuple[int, int]]) -> dict:
    version, scope_rows = _version(project_id)
    rows = np.unique(np.asarray([r for pair in pairs for r in pair], dtype=np.int64))
    found, vectors = row_vectors(project_id, key, _dims(rows), rows, version=version,
                                 scope_rows=scope_rows)
    at = {int(row): i for i, row in enumerate(found.tolist())}
    return {(x, y): float(vectors[at[x]] @ vectors[at[y]])
            for x, y in pairs if x in at and y in at}
