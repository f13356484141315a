"""Reading the insight stage: its progress, near-duplicate groups, the "most unusual" ranking.

Pages and the API call these; they only read what the worker stored (no neighbour search
on a web request). Every row is mapped back to the host's assets through its own table,
filtered by the scope (an asset deleted or moved since the last analysis never shows)
and, for hosts with per-asset permissions, by the access policy's ``filter_assets``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from similarity.embedding.readiness import as_dict
from similarity.errors import SimilarityError
from similarity.host.lookups import sees_whole_scope, visible_assets
from similarity.host.models import asset_queryset
from similarity.models import DuplicateMark, Embedding, InsightState, Neighbours, ProjectReadiness
from similarity.vectors.math import as_array

#: Cosine similarity at or above which two images count as near-duplicates. Measured on
#: the test images (tests/test_insight_duplicates.py prints the figures): see README.
DEFAULT_THRESHOLD = 0.95
MIN_THRESHOLD = 0.5


class InsightNotReady(SimilarityError):
    """No complete analysis yet; ``progress`` says how far the stage is."""

    code = "not_ready"
    http_status = 409

    def __init__(self, progress: dict[str, Any]) -> None:
        super().__init__(_("Duplicates and outliers are not ready yet."))
        self.progress = progress

    def extra(self) -> dict[str, Any]:
        return {"insight": self.progress}


def readiness_payload(readiness: ProjectReadiness, user: Any = None) -> dict[str, Any]:
    """The readiness icon's JSON: the embedding stage, and the insight stage after it
    ("Analysing 4,000 of 10,000"), counted over what ``user`` may see (pass the record
    from ``readiness_for`` for the same user)."""
    stage = status(readiness.project_id, user=user)
    return {**as_dict(readiness, user),
            "insight": {name: stage[name] for name in ("state", "ready", "analysed", "total",
                                                        "percent", "message")}}


def status(project_id: str, *, user: Any = None) -> dict[str, Any]:
    """The stage's progress as JSON ("analysing 4,000 of 10,000"); with ``user``, counted
    over the images that user may see."""
    state = InsightState.objects.filter(project_id=str(project_id)).first()
    if state is None:
        return {"state": InsightState.State.WAITING, "ready": False, "total": 0, "analysed": 0,
                "percent": 0, "message": _("Waiting for embeddings")}
    total, analysed = state.total, state.analysed
    if user is not None and not sees_whole_scope(user, project_id):
        visible = visible_assets(project_id, user).values("pk")
        total = Embedding.objects.filter(
            project_id=state.project_id, model_key=state.model_key,
            status=Embedding.Status.DONE, asset_id__in=visible).count()
        listed = Neighbours.objects.filter(
            project_id=state.project_id, model_key=state.model_key,
            embedding__asset_id__in=visible).count()
        analysed = total if state.state == InsightState.State.READY else min(listed, total)
    percent = 100 if not total else int(100 * analysed / total)
    if state.state == InsightState.State.ANALYSING:
        message = _("Analysing %(done)s of %(total)s") % {
            "done": f"{analysed:,}", "total": f"{total:,}"}
    elif state.state == InsightState.State.READY:
        message = _("%(total)s images analysed") % {"total": f"{total:,}"}
    else:
        message = _("Waiting for embeddings")
    if state.error:
        message = _("Analysis failed: %(error)s") % {"error": state.error}
    return {"state": state.state, "ready": state.complete, "total": total,
            "analysed": analysed, "percent": percent, "message": message,
            "error": state.error, "model": state.model_key,
            "updated": state.updated.isoformat()}


def ready_state(project_id: str) -> InsightState:
    """The scope's stage with a complete analysis; InsightNotReady before the first."""
    state = InsightState.objects.filter(project_id=str(project_id)).first()
    if state is None or not state.complete:
        raise InsightNotReady(status(project_id))
    return state


def parse_threshold(raw: Any, *, low: float = MIN_THRESHOLD,
                    default: float = DEFAULT_THRESHOLD) -> float:
    """A threshold as a user sent it (``low`` to 1); ValueError with the reason."""
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not low <= value <= 1.0:  # NaN fails too
        raise ValueError(_("threshold must be a number from %(low)s to 1.") % {"low": low})
    return quantise_threshold(value)


# --- outliers ----------------------------------------------------------------------------


def outliers(project_id: str, *, user: Any = None, within: QuerySet | None = None) -> QuerySet:
    """Neighbour rows, most unusual first (mean cosine distance to the k nearest)."""
    state = ready_state(project_id)
    assets = visible_assets(project_id, user, within)
    return (
        Neighbours.objects.filter(
            project_id=str(project_id), model_key=state.model_key, score__isnull=False,
            embedding__asset_id__in=assets.values("pk"),
        )
        .order_by("-score", "embedding_id")
        .values_list("embedding_id", "embedding__asset_id", "score")
    )


@dataclass
class Ranked:
    asset: Any
    score: float
    row_id: int


def assets_for(rows: list[tuple[int, Any, float]]) -> list[Ranked]:
    """Map (row id, asset id, score) rows of one page to the host's assets, in one query."""
    assets = asset_queryset().in_bulk([asset_id for _, asset_id, _ in rows])
    return [Ranked(assets[asset_id], score, row_id)
            for row_id, asset_id, score in rows if asset_id in assets]


# --- duplicates --------------------------------------------------------------------------


@dataclass
class Member:
    asset: Any
    row_id: int
    similarity: float
    file_size: int | None
    width: int | None
    height: int | None


@dataclass
class Group:
    rows: list[int]  # embedding row ids; the first is the suggested keeper
    identical: bool = False  # byte-identical files (same SHA-256)
    members: list[Member] = field(default_factory=list)


@dataclass
class _Graph:
    """Every neighbour-list edge of one analysis at or above MIN_THRESHOLD, read once.

    Edges are stored in both directions, sorted by similarity (highest first), so the edges
    of any threshold are a prefix: a slider moving through thresholds never reads the
    database again, and the groups of one threshold cost one pass over that prefix.
    """

    source: np.ndarray  # int64 row ids
    target: np.ndarray
    similarity: np.ndarray  # float32, descending
    identical: list[list[int]]  # rows of byte-identical files, keeper first
    facts: dict[int, tuple]  # row -> (file size, width, height)


_cache_lock = threading.Lock()
_graphs: OrderedDict[tuple, _Graph] = OrderedDict()
_answers: OrderedDict[tuple, list[Group]] = OrderedDict()
_GRAPH_ENTRIES = 8
_ANSWER_ENTRIES = 32


def quantise_threshold(value: float) -> float:
    """Thresholds in steps of 0.001: nearby values share one cached answer, and no finer
    step is meaningful for half-precision vectors (their similarities carry ~3 digits)."""
    return round(round(value * 1000) / 1000, 3)


def duplicate_groups(
    project_id: str, threshold: float = DEFAULT_THRESHOLD, *, user: Any = None
) -> list[Group]:
    """Byte-identical groups first, then near-duplicate groups, largest first.

    A near-duplicate group is a reference image (the suggested keeper: most pixels, then
    the largest file, then the oldest) and every image whose similarity *to that reference*
    is at least ``threshold``: groups never chain (A~B and B~C does not put A with C), so
    the similarity the page shows beside each member is the one that put it there. Groups
    are formed among the images this user can see, so no group is linked through an image
    they cannot open.
    """
    project_id = str(project_id)
    threshold = quantise_threshold(threshold)
    state = ready_state(project_id)
    graph = _graph(project_id, state)
    rows = np.unique(np.concatenate([graph.source, np.asarray(
        [row for group in graph.identical for row in group], dtype=np.int64)]))
    if not len(rows):
        return []
    visible = np.sort(np.fromiter(
        Embedding.objects.filter(
            pk__in=rows.tolist(), asset_id__in=visible_assets(project_id, user).values("pk")
        ).values_list("pk", flat=True), dtype=np.int64))
    key = (project_id, state.model_key, state.version, state.updated, threshold,
           hashlib.blake2b(visible.tobytes(), digest_size=16).digest())
    with _cache_lock:
        groups = _answers.get(key)
    if groups is None:
        groups = _groups(graph, threshold, visible)
        with _cache_lock:
            _answers[key] = groups
            while len(_answers) > _ANSWER_ENTRIES:
                _answers.popitem(last=False)
    # callers fill members into their page's groups: hand out copies, keep the cache clean
    return [Group(rows=list(group.rows), identical=group.identical) for group in groups]


def _graph(project_id: str, state: InsightState) -> _Graph:
    key = (project_id, state.model_key, state.version, state.updated)
    with _cache_lock:
        graph = _graphs.get(key)
        if graph is not None:
            _graphs.move_to_end(key)
            return graph
    graph = _read_graph(project_id, state.model_key)
    with _cache_lock:
        _graphs[key] = graph
        while len(_graphs) > _GRAPH_ENTRIES:
            _graphs.popitem(last=False)
    return graph


def _read_graph(project_id: str, model_key: str) -> _Graph:
    scope = Neighbours.objects.filter(project_id=project_id, model_key=model_key)
    facts: dict[int, tuple] = {}
    hashes = (
        scope.exclude(file_hash__in=["", "-"]).values("file_hash")
        .annotate(n=Count("pk")).filter(n__gt=1).values_list("file_hash", flat=True)
    )
    same_file: dict[str, list[int]] = {}
    for row, digest, size, width, height in scope.filter(file_hash__in=hashes).values_list(
        "embedding_id", "file_hash", "file_size", "width", "height"
    ):
        same_file.setdefault(digest, []).append(row)
        facts[row] = (size, width, height)
    source, target, similarity = [], [], []
    for row, neighbour_ids, sims, size, width, height in scope.filter(
        similarities__0__gte=MIN_THRESHOLD
    ).values_list("embedding_id", "neighbour_ids", "similarities", "file_size", "width", "height"):
        facts[row] = (size, width, height)
        for other, sim in zip(neighbour_ids, sims, strict=True):
            if sim >= MIN_THRESHOLD:
                source.append(row)
                target.append(other)
                similarity.append(sim)
    both_source = np.asarray(source + target, dtype=np.int64)
    both_target = np.asarray(target + source, dtype=np.int64)
    both_similarity = np.asarray(similarity + similarity, dtype=np.float32)
    order = np.argsort(-both_similarity, kind="stable")
    identical = [sorted(rows, key=lambda row: _keeper_key(row, facts))
                 for rows in same_file.values()]
    identical.sort(key=lambda rows: (-len(rows), min(rows)))
    return _Graph(both_source[order], both_target[order], both_similarity[order],
                  identical, facts)


def _groups(graph: _Graph, threshold: float, visible: np.ndarray) -> list[Group]:
    shown = set(visible.tolist())
    identical = []
    for rows in graph.identical:
        kept = [row for row in rows if row in shown]
        if len(kept) > 1:
            identical.append(Group(rows=kept, identical=True))
    # float32 similarities against a float threshold: compare in float32 as stored
    count = int(np.searchsorted(-graph.similarity, -np.float32(threshold), side="right"))
    source, target = graph.source[:count], graph.target[:count]
    seen = np.isin(source, visible) & np.isin(target, visible) & (source != target)
    source, target = source[seen], target[seen]
    near: list[Group] = []
    if len(source):
        nodes = np.unique(source)
        ranked = sorted(nodes.tolist(), key=lambda row: _keeper_key(row, graph.facts))
        by_source = np.argsort(source, kind="stable")
        starts = np.searchsorted(source[by_source], nodes)
        ends = np.searchsorted(source[by_source], nodes, side="right")
        span = {row: (start, end) for row, start, end in zip(nodes.tolist(), starts, ends,
                                                              strict=True)}
        taken: set[int] = set()
        for reference in ranked:  # best image first: it becomes its copies' reference
            if reference in taken:
                continue
            start, end = span[reference]
            members = [row for row in target[by_source[start:end]].tolist() if row not in taken]
            if not members:
                continue
            members = sorted(set(members), key=lambda row: _keeper_key(row, graph.facts))
            taken.add(reference)
            taken.update(members)
            near.append(Group(rows=[reference, *members]))
    identical_sets = {frozenset(group.rows) for group in identical}
    near = [group for group in near if frozenset(group.rows) not in identical_sets]
    return identical + sorted(near, key=lambda g: (-len(g.rows), min(g.rows)))


def _keeper_key(row: int, facts: dict[int, tuple]) -> tuple:
    """Suggested keeper first: most pixels, then the largest file, then the oldest row."""
    size, width, height = facts.get(row, (None, None, None))
    return (-((width or 0) * (height or 0)), -(size or 0), row)


def fill_members(project_id: str, groups: list[Group]) -> list[Group]:
    """Assets, file facts and similarity to the group's first image, for one page."""
    rows = sorted({row for group in groups for row in group.rows})
    if not rows:
        return groups
    embedding = dict(
        Embedding.objects.filter(pk__in=rows).values_list("pk", "asset_id")
    )
    vectors = {
        pk: as_array(vector)
        for pk, vector in Embedding.objects.filter(pk__in=rows).values_list("pk", "vector")
        if vector is not None
    }
    facts = {
        row: (size, width, height)
        for row, size, width, height in Neighbours.objects.filter(embedding_id__in=rows)
        .values_list("embedding_id", "file_size", "width", "height")
    }
    assets = visible_assets(project_id).in_bulk(list(set(embedding.values())))
    for group in groups:
        first = vectors.get(group.rows[0])
        members = []
        for row in group.rows:
            asset = assets.get(embedding.get(row))
            if asset is None:
                continue
            vector = vectors.get(row)
            similarity = 1.0
            if first is not None and vector is not None:
                similarity = float(first @ vector / (np.linalg.norm(first) * np.linalg.norm(vector)))
            size, width, height = facts.get(row, (None, None, None))
            members.append(Member(asset, row, round(similarity, 6), size, width, height))
        group.members = members
    return groups


def marked_for_deletion(project_id: str, *, user: Any = None) -> QuerySet:
    """The scope's images a reviewer marked for deletion ("Keep this one" on another of
    their group), that this user may see, in key order: what the duplicates review
    leaves for someone to delete or move (the app never deletes a host's assets itself)."""
    marked = DuplicateMark.objects.filter(project_id=str(project_id),
                                          mark=DuplicateMark.Mark.DELETE)
    rows = Embedding.objects.filter(pk__in=marked.values("embedding_id")).values("asset_id")
    return visible_assets(str(project_id), user).filter(pk__in=rows).order_by("pk")


def unmark(project_id: str, asset_ids: list[Any]) -> int:
    """Forget the marks of these images (they stay; their groups come back to review)."""
    rows = Embedding.objects.filter(project_id=str(project_id), asset_id__in=asset_ids)
    return DuplicateMark.objects.filter(embedding_id__in=rows.values("pk")).delete()[0]
