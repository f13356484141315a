"""A project's 2-D map: PCA of its unit vectors, computed by the worker, stored per row.

Why PCA by default: it is exact, deterministic, needs nothing beyond NumPy/torch, costs
one 384 x 384 covariance (about 0.1 s at 100,000 images here) and, unlike UMAP or t-SNE,
gives a basis that new images can be projected with as they arrive, so a map never
reshuffles after an upload. The basis (mean and the two principal directions) is stored
in ``MapBasis``; it is refitted, and every image re-projected, when the scope's size
changed by more than ``MAP_REFIT_SHARE`` since the fit (or the model changed).
Positions are stored on each image's ``Neighbours`` row (``map_x``, ``map_y``).

``payload`` is what the page and the API serve: one compact columnar JSON (asset ids,
x, y in 0..1, group index, outlier score), only for assets the user may see.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from django.db import connection, transaction

from similarity.conf import similarity_settings
from similarity.embedding.readiness import get_readiness
from similarity.host.access import get_access_policy
from similarity.host.groups import group_choices
from similarity.host.lookups import visible_assets
from similarity.host.models import group_lookup
from similarity.host.scopes import public_project_key
from similarity.insight.reading import ready_state
from similarity.models import MapBasis, Neighbours


def fit(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, the two principal directions as a 2 x dims array, share of variance they
    explain). Signs are fixed (each direction's largest entry is positive), so refits of
    similar data do not mirror the map."""
    data = np.asarray(vectors, dtype=np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    covariance = centred.T @ centred / max(len(data) - 1, 1)
    values, directions = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:2]
    components = directions[:, order].T
    if components.shape[0] < 2:  # one dimension only (a test's tiny vectors)
        components = np.vstack([components, np.zeros((2 - len(components), data.shape[1]))])
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float(values.sum())
    explained = float(values[order].sum() / total) if total > 0 else 0.0
    return mean.astype(np.float32), components.astype(np.float32), explained


def project(vectors: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(n, 2) coordinates of vectors in the basis."""
    return (np.asarray(vectors, dtype=np.float32) - mean) @ components.T


def _basis_arrays(basis: MapBasis) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(bytes(basis.basis), dtype=np.float32)
    return raw[: basis.dims].copy(), raw[basis.dims:].reshape(2, basis.dims).copy()


def needs_refit(basis: MapBasis | None, key: str, rows: int, dims: int) -> bool:
    if basis is None or basis.model_key != key or basis.dims != dims:
        return True
    share = float(similarity_settings.MAP_REFIT_SHARE)
    return abs(rows - basis.fitted_rows) > share * max(basis.fitted_rows, 1)


def update_map(project_id: str, key: str, ids: np.ndarray, vectors: np.ndarray) -> int:
    """Project the scope's unplaced images (or refit and re-project all); returns how
    many positions were written. Rows without a neighbour list yet are skipped."""
    project_id = str(project_id)
    if not len(ids):
        MapBasis.objects.filter(project_id=project_id).delete()
        return 0
    dims = vectors.shape[1]
    basis = MapBasis.objects.filter(project_id=project_id).first()
    if needs_refit(basis, key, len(ids), dims):
        mean, components, explained = fit(vectors)
        MapBasis.objects.update_or_create(
            project_id=project_id,
            defaults={"model_key": key, "dims": dims, "fitted_rows": len(ids),
                      "explained": explained,
                      "basis": np.concatenate([mean, components.ravel()]).tobytes()},
        )
        positions = np.arange(len(ids))
    else:
        mean, components = _basis_arrays(basis)
        missing = np.fromiter(
            Neighbours.objects.filter(project_id=project_id, model_key=key, map_x__isnull=True)
            .values_list("embedding_id", flat=True), dtype=np.int64)
        positions = np.nonzero(np.isin(ids, missing))[0]
    if not len(positions):
        return 0
    coords = project(vectors[positions], mean, components)
    return _write(ids[positions], coords)


def _write(row_ids: np.ndarray, coords: np.ndarray) -> int:
    """One COPY into a temporary table and one UPDATE (100,000 rows: about a second)."""
    table = Neighbours._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS _map_rows "
                       "(embedding_id bigint, x float8, y float8) ON COMMIT DELETE ROWS")
        with cursor.cursor.copy("COPY _map_rows (embedding_id, x, y) FROM STDIN") as copy:
            for row_id, (x, y) in zip(row_ids.tolist(), coords.tolist(), strict=True):
                copy.write_row((row_id, x, y))
        cursor.execute(
            f"UPDATE {table} n SET map_x = r.x, map_y = r.y FROM _map_rows r "  # noqa: S608
            "WHERE n.embedding_id = r.embedding_id")
        written = cursor.rowcount
        cursor.execute("TRUNCATE _map_rows")
    return written


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_CACHE_ENTRIES = 4


def payload(project_id: str, user: Any = None) -> dict[str, Any]:
    """The map of the assets this user may see, as columns (InsightNotReady before the
    first complete analysis). x and y are scaled to 0..1 together (the aspect is kept).

    Kept per process while neither the analysis nor the scope's rows changed (deletes
    and moves move the readiness version), unless the policy narrows assets per user.
    """
    project_id = str(project_id)
    state = ready_state(project_id)
    if get_access_policy().narrows_assets:
        return _payload(project_id, state, user)
    key = (project_id, state.model_key, state.version, state.updated,
           get_readiness(project_id).updated)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        cached = _payload(project_id, state, user)
        with _cache_lock:
            _cache[key] = cached
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    return cached


def _payload(project_id: str, state: Any, user: Any) -> dict[str, Any]:
    assets = visible_assets(project_id, user)
    lookup = group_lookup()
    groups = group_choices(project_id) if lookup else []
    index = {key: i for i, (key, _label) in enumerate(groups)}
    # The host's table, live and narrowed by the policy, read once (with each asset's
    # group): two plain scans instead of a semi-join, 100,000 rows in well under a second.
    if groups:
        group_of = {pk: index.get(str(group), -1)
                    for pk, group in assets.values_list("pk", f"{lookup}__pk")}
    else:
        group_of = dict.fromkeys(assets.values_list("pk", flat=True), -1)
    rows = [
        row for row in Neighbours.objects.filter(
            project_id=project_id, model_key=state.model_key, map_x__isnull=False,
        ).order_by("embedding_id").values_list("embedding__asset_id", "map_x", "map_y", "score")
        if row[0] in group_of
    ]
    if rows:
        xy = np.array([(x, y) for _pk, x, y, _s in rows], dtype=np.float64)
        low = xy.min(axis=0)
        span = float((xy.max(axis=0) - low).max()) or 1.0
        scaled = (xy - low) / span
    else:
        scaled = np.zeros((0, 2))
    basis = MapBasis.objects.filter(project_id=project_id).first()
    return {
        "project": public_project_key(project_id),
        "count": len(rows),
        "method": "pca",
        "explained": round(basis.explained, 4) if basis else None,
        # text: a 64-bit key above 2**53 would lose digits as a JSON number in JavaScript
        "ids": [str(pk) for pk, _x, _y, _s in rows],
        "x": np.round(scaled[:, 0], 5).tolist(),
        "y": np.round(scaled[:, 1], 5).tolist(),
        "group": [group_of.get(pk, -1) for pk, _x, _y, _s in rows],
        "groups": [{"key": key, "label": label} for key, label in groups],
        "score": [None if s is None else round(s, 4) for _pk, _x, _y, s in rows],
        "max_selection": int(similarity_settings.MAX_RESULTS),
    }
