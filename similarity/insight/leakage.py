"""Leakage between two datasets of a project: every pair across them at or above a
similarity threshold ("test" images that are copies or near-copies of "train" images).

Read from the neighbour lists the insight stage keeps current, never a fresh all-pairs
scan. Why that is complete: each image's list holds its K nearest images of the whole
project, so a list whose K-th similarity is below the threshold names *every* image at or
above it. A list can only miss a pair when it is full at the threshold (K-th similarity
>= threshold: the image has K or more near-copies); those rows of the smaller dataset are
compared exactly with the other dataset. Each pair (s, o) with s on the smaller side is
then found: s's list is complete or rescanned. Both sides' lists are read (only those
whose best neighbour reaches the threshold, a filter in SQL), so an image analysed after
an older list was written is caught by its own, newer list. While the stage is still
catching up with the latest uploads, the answer says so (``behind``): a pair of two lists
written before each other's images existed can be missing until the pass ends.

Similarities in lists are stored rounded to 6 decimals; a list hit within 1e-6 of the
threshold is scored again exactly, so the threshold means the same on every path.
Byte-identical files (same SHA-256, hashed by the stage) come first, then the rest by
similarity. Bounded: at most ``MAX_PAIRS`` pairs are kept (the answer says when more
exist), the threshold is at least ``MIN_THRESHOLD``, and an answer is kept per process for
the pages of one report.

Incremental by construction: an upload of 100 images costs the stage's incremental pass
(the new images' lists, and the old lists they enter) and one report read.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from similarity.errors import SimilarityError
from similarity.host.groups import group_choices, in_groups
from similarity.host.lookups import visible_assets
from similarity.insight import reading
from similarity.insight.reading import quantise_threshold, ready_state
from similarity.insight.stage import is_current
from similarity.models import Embedding, InsightState, Neighbours, ProjectReadiness
from similarity.vectors.rows import row_vectors

#: Leakage is about copies and near-copies; below this, "similar" is not leakage.
MIN_THRESHOLD = 0.8
DEFAULT_THRESHOLD = 0.95
#: Pairs one report keeps (byte-identical first, then the most similar).
MAX_PAIRS = 10_000
#: Stored similarities carry 6 decimals: hits this close to the threshold are re-scored.
ROUNDING = 1e-6
_COLUMNS = 16384
_ENTRIES = 8
_lock = threading.Lock()
_answers: OrderedDict[tuple, Leakage] = OrderedDict()


class LeakageError(SimilarityError):
    """A report that cannot be made as asked (the API's 400, naming the field)."""

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
    a_pending: int  # embedded images of each side not analysed yet (not compared)
    b_pending: int
    threshold: float
    rescanned: int  # rows whose list was full at the threshold, compared exactly
    truncated: bool = False  # more than MAX_PAIRS pairs: only the first are kept
    behind: bool = False  # the stage has not taken in the latest changes yet

    @property
    def identical(self) -> int:
        return sum(1 for pair in self.pairs if pair.identical)

    @property
    def b_copies(self) -> int:
        """Images of the second dataset with at least one copy in the first."""
        return len({pair.b_row for pair in self.pairs})


def parse_threshold(raw: Any) -> float:
    """A threshold as a user sent it (MIN_THRESHOLD to 1); LeakageError naming it."""
    try:
        return reading.parse_threshold(raw, low=MIN_THRESHOLD, default=DEFAULT_THRESHOLD)
    except ValueError as exc:
        raise LeakageError(str(exc), "threshold") from exc


def check_groups(project_id: str, a: Any, b: Any) -> tuple[str, str]:
    """Both datasets as keys of this scope's groups, and different (else LeakageError)."""
    keys = {key for key, _label in group_choices(project_id)}
    for field, value in (("a", a), ("b", b)):
        if value in (None, "") or not isinstance(value, str | int) or str(value) not in keys:
            raise LeakageError(_("%(field)s must name a dataset of this project with images.")
                               % {"field": field}, field)
    if str(a) == str(b):
        raise LeakageError(_("Choose two different datasets."), "b")
    return str(a), str(b)


@dataclass
class _Side:
    rows: np.ndarray  # our row ids with a list, ascending
    assets: list[Any]  # their host asset keys, aligned
    pending: int
    query: QuerySet  # the same rows, as a subquery

    def asset(self, rows: np.ndarray) -> list[Any]:
        return [self.assets[i] for i in np.searchsorted(self.rows, rows).tolist()]


def _side(project_id: str, model_key: str, group: str, user: Any) -> _Side:
    assets = in_groups(visible_assets(project_id, user), [group])
    embedded = Embedding.objects.filter(project_id=project_id, model_key=model_key,
                                        status=Embedding.Status.DONE,
                                        asset_id__in=assets.values("pk"))
    analysed = embedded.filter(neighbours__isnull=False)
    pairs = list(analysed.order_by("pk").values_list("pk", "asset_id"))
    rows = np.fromiter((pk for pk, _ in pairs), dtype=np.int64, count=len(pairs))
    pending = embedded.count() - len(pairs)
    return _Side(rows, [asset for _, asset in pairs], max(0, pending), analysed.values("pk"))


def leakage(project_id: str, a: Any, b: Any, threshold: float, *, user: Any = None) -> Leakage:
    """Pairs of (an image of ``a``, an image of ``b``) with cosine similarity at least
    ``threshold``, among the analysed images ``user`` may see."""
    project_id = str(project_id)
    a, b = check_groups(project_id, a, b)
    threshold = quantise_threshold(threshold)
    if threshold < MIN_THRESHOLD:
        raise LeakageError(_("threshold must be a number from %(low)s to 1.")
                           % {"low": MIN_THRESHOLD}, "threshold")
    state = ready_state(project_id)
    key = state.model_key
    side_a, side_b = _side(project_id, key, a, user), _side(project_id, key, b, user)
    ready = ProjectReadiness.objects.filter(project_id=project_id).first()
    cache_key = (project_id, key, state.version, state.updated, a, b, threshold,
                 hashlib.blake2b(side_a.rows.tobytes() + b"|" + side_b.rows.tobytes(),
                                 digest_size=16).digest())
    with _lock:
        found = _answers.get(cache_key)
        if found is not None:
            _answers.move_to_end(cache_key)
            return found
    found = _report(project_id, state, ready, side_a, side_b, threshold)
    with _lock:
        _answers[cache_key] = found
        while len(_answers) > _ENTRIES:
            _answers.popitem(last=False)
    return found


def _report(project_id: str, state: InsightState, ready: ProjectReadiness | None,
            side_a: _Side, side_b: _Side, threshold: float) -> Leakage:
    key = state.model_key
    behind = ready is None or not is_current(state, ready)
    if not len(side_a.rows) or not len(side_b.rows):
        return Leakage([], len(side_a.rows), len(side_b.rows), side_a.pending, side_b.pending,
                       threshold, 0, behind=behind)
    t = np.float32(threshold)
    scores: dict[tuple[int, int], float] = {}  # (a row, b row) -> similarity
    unsure: set[tuple[int, int]] = set()
    full: dict[str, list[int]] = {"a": [], "b": []}
    for name, mine, other in (("a", side_a, side_b), ("b", side_b, side_a)):
        sources: list[int] = []
        targets: list[int] = []
        values: list[float] = []
        for row, neighbour_ids, sims, kth in Neighbours.objects.filter(
            project_id=project_id, model_key=key, embedding_id__in=mine.query,
            similarities__0__gte=threshold - ROUNDING,
        ).values_list("embedding_id", "neighbour_ids", "similarities", "kth"):
            if np.float32(kth) >= t:
                full[name].append(row)
            sources.extend([row] * len(neighbour_ids))
            targets.extend(neighbour_ids)
            values.extend(sims)
        source = np.asarray(sources, dtype=np.int64)
        target = np.asarray(targets, dtype=np.int64)
        value = np.asarray(values, dtype=np.float64)
        keep = (value >= threshold - ROUNDING) & _member(other.rows, target)
        for row, other_row, sim in zip(source[keep].tolist(), target[keep].tolist(),
                                       value[keep].tolist(), strict=True):
            pair = (row, other_row) if name == "a" else (other_row, row)
            scores[pair] = sim
            if abs(sim - threshold) <= ROUNDING:
                unsure.add(pair)
    _small, other, small_name = ((side_b, side_a, "b") if len(side_b.rows) < len(side_a.rows)
                                else (side_a, side_b, "a"))
    rescan = np.asarray(sorted(full[small_name]), dtype=np.int64)
    truncated = False
    if len(rescan):
        for row, other_row, sim in _rescan(project_id, key, ready, rescan, other.rows, t):
            pair = (row, other_row) if small_name == "a" else (other_row, row)
            scores[pair] = sim
            unsure.discard(pair)
            if len(scores) > 4 * MAX_PAIRS:
                truncated = True
                break
    identical, more = _same_files(project_id, key, side_a, side_b)
    truncated = truncated or more
    missing = [pair for pair in identical if pair not in scores] + sorted(unsure)
    if missing:
        exact = _similarities(project_id, key, ready, missing)
        for pair in unsure:
            if exact.get(pair, -2.0) >= threshold or pair in identical:
                scores[pair] = exact.get(pair, scores[pair])
            else:
                scores.pop(pair, None)
        for pair in identical:
            scores.setdefault(pair, exact.get(pair, 1.0))
    ranked = sorted(scores.items(), key=lambda item: (item[0] not in identical, -item[1],
                                                      item[0][1], item[0][0]))
    if len(ranked) > MAX_PAIRS:
        ranked, truncated = ranked[:MAX_PAIRS], True
    a_rows = np.asarray([pair[0] for pair, _ in ranked], dtype=np.int64)
    b_rows = np.asarray([pair[1] for pair, _ in ranked], dtype=np.int64)
    pairs = [Pair(a_asset, b_asset, int(a_row), int(b_row), round(min(sim, 1.0), 6),
                  (int(a_row), int(b_row)) in identical)
             for a_asset, b_asset, a_row, b_row, (_, sim) in zip(
                 side_a.asset(a_rows), side_b.asset(b_rows), a_rows.tolist(), b_rows.tolist(),
                 ranked, strict=True)]
    return Leakage(pairs, len(side_a.rows), len(side_b.rows), side_a.pending, side_b.pending,
                   threshold, len(rescan), truncated=truncated, behind=behind)


def _vectors(project_id: str, key: str, ready: ProjectReadiness | None,
             rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows' unit vectors, through the same cache and version as search."""
    version = (ready.updated, ready.embedded) if ready else (None, 0)
    dims = int(Embedding.objects.filter(pk=int(rows[0])).values_list("dims", flat=True).first())
    return row_vectors(project_id, key, dims, rows, version=version,
                       scope_rows=ready.embedded if ready else 0)


def _rescan(project_id: str, key: str, ready: ProjectReadiness | None, rows: np.ndarray,
            other_ids: np.ndarray, t: np.float32):
    """(row, other row, similarity) of rows whose list was full at the threshold, against
    the other side, exactly, in column blocks (a tile is at most 1,024 x 16,384)."""
    rows, queries = _vectors(project_id, key, ready, rows)
    others, columns = _vectors(project_id, key, ready, other_ids)
    for start in range(0, len(rows), 1024):
        block = queries[start:start + 1024]
        for column in range(0, len(others), _COLUMNS):
            tile = block @ columns[column:column + _COLUMNS].T
            hit_rows, hit_columns = np.nonzero(tile >= t)
            for i, j in zip(hit_rows.tolist(), hit_columns.tolist(), strict=True):
                yield int(rows[start + i]), int(others[column + j]), float(tile[i, j])


def _same_files(project_id: str, key: str, side_a: _Side, side_b: _Side
                ) -> tuple[set[tuple[int, int]], bool]:
    """(a row, b row) pairs whose files have the same SHA-256 (at most MAX_PAIRS), and
    whether there were more."""
    scope = Neighbours.objects.filter(project_id=project_id, model_key=key)
    repeated = (scope.exclude(file_hash__in=["", "-"]).values("file_hash")
                .annotate(n=Count("pk")).filter(n__gt=1).values("file_hash"))
    by_hash: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    found = list(scope.filter(file_hash__in=repeated).values_list("embedding_id", "file_hash"))
    rows = np.asarray([row for row, _digest in found], dtype=np.int64)
    in_a, in_b = _member(side_a.rows, rows), _member(side_b.rows, rows)
    for (row, digest), a_side, b_side in zip(found, in_a.tolist(), in_b.tolist(), strict=True):
        if a_side:
            by_hash[digest][0].append(row)
        elif b_side:
            by_hash[digest][1].append(row)
    pairs: set[tuple[int, int]] = set()
    for mine, theirs in by_hash.values():
        for a_row in mine:
            for b_row in theirs:
                if len(pairs) >= MAX_PAIRS:
                    return pairs, True
                pairs.add((a_row, b_row))
    return pairs, False


def _member(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``rows`` (ascending): one binary search each."""
    if not len(rows) or not len(values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(rows, values), len(rows) - 1)
    return rows[at] == values


def _similarities(project_id: str, key: str, ready: ProjectReadiness | None,
                  pairs: list[tuple[int, int]]) -> dict:
    rows = np.unique(np.asarray([r for pair in pairs for r in pair], dtype=np.int64))
    found, vectors = _vectors(project_id, key, ready, rows)
    at = {int(row): i for i, row in enumerate(found.tolist())}
    return {(x, y): float(vectors[at[x]] @ vectors[at[y]])
            for x, y in pairs if x in at and y in at}
