"""Reading the insight stage: its progress, near-duplicate groups, the "most unusual" ranking.

Pages and the API call these; they only read what the worker stored (no neighbour search
on a web request). Every row is mapped back to the host's assets through its own table,
filtered by the scope (an asset deleted or moved since the last analysis never shows)
and, for hosts with per-asset permissions, by the access policy's ``filter_assets``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from similarity.embedding.readiness import as_dict
from similarity.errors import SimilarityError
from similarity.host.lookups import visible_assets
from similarity.host.models import asset_queryset, follow_lookup, get_asset_model, group_lookup
from similarity.host.scopes import project_assets
from similarity.models import Embedding, InsightState, Neighbours, ProjectReadiness
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


def readiness_payload(readiness: ProjectReadiness) -> dict[str, Any]:
    """The readiness icon's JSON: the embedding stage, and the insight stage after it
    ("Analysing 4,000 of 10,000")."""
    stage = status(readiness.project_id)
    return {**as_dict(readiness),
            "insight": {name: stage[name] for name in ("state", "ready", "analysed", "total",
                                                        "percent", "message")}}


def status(project_id: str) -> dict[str, Any]:
    """The stage's progress as JSON ("analysing 4,000 of 10,000")."""
    state = InsightState.objects.filter(project_id=str(project_id)).first()
    if state is None:
        return {"state": InsightState.State.WAITING, "ready": False, "total": 0, "analysed": 0,
                "percent": 0, "message": _("Waiting for embeddings")}
    percent = 100 if not state.total else int(100 * state.analysed / state.total)
    if state.state == InsightState.State.ANALYSING:
        message = _("Analysing %(done)s of %(total)s") % {
            "done": f"{state.analysed:,}", "total": f"{state.total:,}"}
    elif state.state == InsightState.State.READY:
        message = _("%(total)s images analysed") % {"total": f"{state.total:,}"}
    else:
        message = _("Waiting for embeddings")
    return {"state": state.state, "ready": state.complete, "total": state.total,
            "analysed": state.analysed, "percent": percent, "message": message,
            "model": state.model_key, "updated": state.updated.isoformat()}


def ready_state(project_id: str) -> InsightState:
    """The scope's stage with a complete analysis; InsightNotReady before the first."""
    state = InsightState.objects.filter(project_id=str(project_id)).first()
    if state is None or not state.complete:
        raise InsightNotReady(status(project_id))
    return state


def parse_threshold(raw: Any) -> float:
    """A threshold as a user sent it; ValueError with the reason."""
    if raw in (None, ""):
        return DEFAULT_THRESHOLD
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(_("threshold must be a number from %(low)s to 1.") % {
            "low": MIN_THRESHOLD}) from exc
    if not MIN_THRESHOLD <= value <= 1.0:
        raise ValueError(_("threshold must be a number from %(low)s to 1.") % {"low": MIN_THRESHOLD})
    return value


# --- groups ------------------------------------------------------------------------------


def group_choices(project_id: str) -> list[tuple[str, str]]:
    """(key, label) of the scope's groups (datasets), for the filter."""
    lookup = group_lookup()
    if lookup is None:
        return []
    model = follow_lookup(get_asset_model(), lookup)
    if model is None:
        return []
    keys = project_assets(project_id).values(f"{lookup}__pk")
    return [(str(obj.pk), str(obj)) for obj in model._default_manager.filter(pk__in=keys)]


def within_group(project_id: str, group: str | None) -> QuerySet | None:
    lookup = group_lookup()
    if not group or lookup is None:
        return None
    if group not in {key for key, _label in group_choices(project_id)}:
        return project_assets(project_id).none()
    return project_assets(project_id).filter(**{f"{lookup}__pk": group})


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


def components(pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components of an undirected graph given as (m, 2) id pairs."""
    if not len(pairs):
        return []
    nodes, inverse = np.unique(pairs, return_inverse=True)
    edges = inverse.reshape(-1, 2)
    label = np.arange(len(nodes))
    while True:  # min-label propagation with pointer jumping: O(m log n)
        low = np.minimum(label[edges[:, 0]], label[edges[:, 1]])
        updated = label.copy()
        np.minimum.at(updated, edges[:, 0], low)
        np.minimum.at(updated, edges[:, 1], low)
        updated = updated[updated]
        if np.array_equal(updated, label):
            break
        label = updated
    order = np.argsort(label, kind="stable")
    cuts = np.nonzero(np.diff(label[order]))[0] + 1
    return [nodes[part] for part in np.split(order, cuts)]


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, list[Group]] = OrderedDict()
_CACHE_ENTRIES = 16


def duplicate_groups(
    project_id: str, threshold: float = DEFAULT_THRESHOLD, *, user: Any = None
) -> list[Group]:
    """Byte-identical groups first, then near-duplicate groups, largest first.

    Near-duplicates: images joined by a neighbour-list edge of cosine >= ``threshold``,
    grouped by connected components. Members are the live, visible assets only.
    """
    project_id = str(project_id)
    state = ready_state(project_id)
    key = (project_id, state.model_key, state.version, state.updated, round(threshold, 6))
    with _cache_lock:
        groups = _cache.get(key)
    if groups is None:
        groups = _all_groups(project_id, state.model_key, threshold)
        with _cache_lock:
            _cache[key] = groups
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    rows = sorted({row for group in groups for row in group.rows})
    if not rows:
        return []
    visible = set(
        Embedding.objects.filter(
            pk__in=rows, asset_id__in=visible_assets(project_id, user).values("pk")
        ).values_list("pk", flat=True)
    )
    out = []
    for group in groups:
        kept = [row for row in group.rows if row in visible]
        if len(kept) > 1:
            out.append(Group(rows=kept, identical=group.identical))
    return out


def _all_groups(project_id: str, model_key: str, threshold: float) -> list[Group]:
    scope = Neighbours.objects.filter(project_id=project_id, model_key=model_key)
    facts = {}
    identical: list[Group] = []
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
    identical = [Group(rows=sorted(rows), identical=True) for rows in same_file.values()]
    pairs = []
    for row, neighbour_ids, sims in scope.filter(similarities__0__gte=threshold).values_list(
        "embedding_id", "neighbour_ids", "similarities"
    ):
        pairs.extend((row, other) for other, sim in zip(neighbour_ids, sims, strict=True)
                     if sim >= threshold)
    near = [Group(rows=sorted(part.tolist()))
            for part in components(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))]
    identical_sets = {frozenset(group.rows) for group in identical}
    near = [group for group in near if frozenset(group.rows) not in identical_sets]
    missing = {row for group in near for row in group.rows} - set(facts)
    for row, size, width, height in scope.filter(embedding_id__in=missing).values_list(
        "embedding_id", "file_size", "width", "height"
    ):
        facts[row] = (size, width, height)
    groups = []
    for group in sorted(identical, key=lambda g: (-len(g.rows), g.rows[0])) + sorted(
        near, key=lambda g: (-len(g.rows), g.rows[0])
    ):
        group.rows.sort(key=lambda row: _keeper_key(row, facts))
        groups.append(group)
    return groups


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
