"""The insight stage: each image's k nearest neighbours, kept up to date by the worker.

Why a stored neighbour graph: near-duplicate groups and the "most unusual" ranking both
need every image's nearest neighbours, and computing them per page view is O(n²). The
worker computes them once (blocked matrix products, ``BLOCK`` rows at a time, so memory
stays O(BLOCK·n), never O(n²)) and then keeps them current incrementally:

- images that are new (or re-embedded: their vector's fingerprint changed) get a full
  list computed against the whole scope;
- every other image only needs to know whether a new image is nearer than its k-th
  neighbour: one product new x all gives both directions, and lists are merged;
- images whose list names an image that left (deleted, moved to another scope,
  re-embedded) are recomputed, and only those.

Lists hold our embedding row ids (always int64) and are mapped to the host's assets on
read, so any host key type works. Similarity is the same cosine as search, over the same
unit vectors (``similarity.exact.get_matrix``). Results are exact (recall 1.0).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _

from similarity import exact, notifications, readiness, registry
from similarity.conf import similarity_settings
from similarity.insight_models import InsightState, Neighbours
from similarity.models import Embedding, Notification, ProjectReadiness

logger = logging.getLogger(__name__)

#: Neighbours kept per image.
K = 10
#: Rows per matrix product. With COLUMNS this bounds one similarity tile to
#: 2048 x 16384 x 4 B = 128 MiB whatever the scope's size: memory is O(BLOCK·COLUMNS).
BLOCK = 2048
#: Columns per product.
COLUMNS = 16384
#: Fingerprints are compared with this tolerance (float32 products, any BLAS blocking).
FINGERPRINT_TOLERANCE = 1e-4
#: Above this share of new images a full (budgeted, resumable) rebuild replaces an
#: incremental pass: an incremental pass runs in one task, and its cost (about 2 x new x
#: all products) stays a fraction of a full build's (all x all / 2) below this share.
REBUILD_SHARE = 0.1
#: Rows per square tile of the full build. Each tile is computed once and serves both of
#: its row blocks (the similarity matrix is symmetric): 4096 x 4096 x 4 B = 64 MiB.
SYM_BLOCK = 4096
_FINGERPRINT_SEED = 13

State = InsightState.State


# --- neighbour computation (pure NumPy / torch, no database) ---------------------------


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """A fixed random projection per row: equal vectors give equal values, a new vector
    (a new file) a different one, so stale lists are found without storing vectors."""
    if not len(vectors):
        return np.zeros(0, dtype=np.float64)
    rng = np.random.default_rng(_FINGERPRINT_SEED)
    direction = rng.standard_normal(vectors.shape[1]).astype(np.float32)
    return (vectors @ direction).astype(np.float64)


def _product(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """rows @ columns.T in float32, through torch when present (2-3x faster here)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the embedder
        return rows @ columns.T
    return (torch.from_numpy(rows) @ torch.from_numpy(columns).T).numpy()


def _best(tile: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of each row's ``width`` largest entries (unordered).

    torch.topk: NumPy's argpartition took 13 s for a 2048 x 100k tile here, topk 0.8 s.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover
        part = np.argpartition(-tile, width - 1, axis=1)[:, :width]
        return part, np.take_along_axis(tile, part, 1)
    values, positions = torch.topk(torch.from_numpy(tile), width, dim=1, sorted=False)
    return positions.numpy(), values.numpy()


def _sort_lists(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k best per row, nearest first, ties by row id (padding: id -1, -inf)."""
    order = np.lexsort((ids, -sims), axis=1)[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(sims, order, 1)


def top_k(
    vectors: np.ndarray,
    ids: np.ndarray,
    rows: np.ndarray,
    k: int = K,
    *,
    progress: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (by cosine) of ``vectors[rows]`` among all ``vectors``.

    Returns row-id and similarity arrays of shape (len(rows), k), padded with -1 / -inf
    when the scope holds fewer than k other images. Works block by block; ``progress``
    receives each block's (positions, ids, sims) as it is done, so callers can write and
    report as they go instead of holding everything.
    """
    n = len(ids)
    out_ids = np.full((len(rows), k), -1, dtype=np.int64)
    out_sims = np.full((len(rows), k), -np.inf, dtype=np.float32)
    take = min(k, n - 1)
    if take <= 0:
        if progress is not None and len(rows):
            progress(rows, out_ids, out_sims)
        return out_ids, out_sims
    for start in range(0, len(rows), BLOCK):
        block = rows[start:start + BLOCK]
        best_ids = np.full((len(block), take), -1, dtype=np.int64)
        best_sims = np.full((len(block), take), -np.inf, dtype=np.float32)
        queries = vectors[block]
        for column in range(0, n, COLUMNS):
            tile = _product(queries, vectors[column:column + COLUMNS])
            inside = (block >= column) & (block < column + tile.shape[1])
            tile[np.nonzero(inside)[0], block[inside] - column] = -np.inf  # never itself
            width = min(take, tile.shape[1])
            part, cand_sims = _best(tile, width)
            cand_ids = ids[part + column]
            best_ids, best_sims = _sort_lists(
                np.concatenate([best_ids, cand_ids], 1),
                np.concatenate([best_sims, cand_sims], 1), take,
            )
        best_ids[~np.isfinite(best_sims)] = -1
        out_ids[start:start + len(block), :take] = best_ids
        out_sims[start:start + len(block), :take] = best_sims
        if progress is not None:
            progress(block, out_ids[start:start + len(block)], out_sims[start:start + len(block)])
    return out_ids, out_sims


def _fold(best_ids, best_sims, tile, tile_ids, width: int):
    """Fold one tile (torch, rows x columns) into running lists (torch, rows x width).

    torch.topk over the tile's rows, then over the 2·width candidates; ordering and ties
    are settled by ``_sort_lists`` when a block is written. (Skipping rows with no entry
    above their k-th was tried: on clustered data 85 % of rows still had one, and the
    extra comparison pass made the build slower.)
    """
    import torch

    take = min(width, tile.shape[1])
    values, positions = torch.topk(tile, take, dim=1, sorted=False)
    cand_sims = torch.cat([best_sims, values], 1)
    cand_ids = torch.cat([best_ids, tile_ids[positions]], 1)
    keep_values, keep = torch.topk(cand_sims, width, dim=1, sorted=False)
    return torch.gather(cand_ids, 1, keep), keep_values


def build_lists(
    vectors: np.ndarray,
    ids: np.ndarray,
    start: int = 0,
    k: int = K,
    *,
    progress: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
    deadline: float = float("inf"),
) -> int:
    """Exact lists of rows ``start:`` against every row: the full build.

    Square tiles of ``SYM_BLOCK`` rows, each computed once for both of its row blocks:
    row block i meets blocks j > i in one product whose rows update block i and whose
    columns (the transposed tile) update block j, so block i is final once its row of
    tiles is done and is handed to ``progress`` (ids and sims nearest first). Rows before
    ``start`` (a build resumed from its cursor) are only columns, in plain tiles. Stops
    after the block during which ``deadline`` passed; returns the position reached.
    """
    import torch

    n = len(ids)
    take = min(k, n - 1)
    if take <= 0:
        if progress is not None and start < n:
            rows = np.arange(start, n)
            progress(rows, np.full((len(rows), k), -1, np.int64),
                     np.full((len(rows), k), -np.inf, np.float32))
        return n
    every = torch.from_numpy(np.ascontiguousarray(vectors))
    all_ids = torch.from_numpy(ids)
    count = n - start
    best_ids = torch.full((count, take), -1, dtype=torch.int64)
    best_sims = torch.full((count, take), float("-inf"), dtype=torch.float32)
    starts = list(range(start, n, SYM_BLOCK))
    for number, s in enumerate(starts):
        e = min(s + SYM_BLOCK, n)
        rows = slice(s - start, e - start)
        queries = every[s:e]
        for column in range(0, start, COLUMNS):  # rows before the cursor: columns only
            end = min(column + COLUMNS, start)
            tile = queries @ every[column:end].T
            best_ids[rows], best_sims[rows] = _fold(
                best_ids[rows], best_sims[rows], tile, all_ids[column:end], take)
        tile = queries @ queries.T
        tile.fill_diagonal_(float("-inf"))  # never itself
        best_ids[rows], best_sims[rows] = _fold(
            best_ids[rows], best_sims[rows], tile, all_ids[s:e], take)
        for s2 in starts[number + 1:]:
            e2 = min(s2 + SYM_BLOCK, n)
            other = slice(s2 - start, e2 - start)
            tile = queries @ every[s2:e2].T
            best_ids[rows], best_sims[rows] = _fold(
                best_ids[rows], best_sims[rows], tile, all_ids[s2:e2], take)
            best_ids[other], best_sims[other] = _fold(
                best_ids[other], best_sims[other], tile.T.contiguous(), all_ids[s:e], take)
        block_ids, block_sims = _sort_lists(best_ids[rows].numpy(), best_sims[rows].numpy(), take)
        block_ids[~np.isfinite(block_sims)] = -1
        out_ids = np.full((e - s, k), -1, dtype=np.int64)
        out_sims = np.full((e - s, k), -np.inf, dtype=np.float32)
        out_ids[:, :take], out_sims[:, :take] = block_ids, block_sims
        if progress is not None:
            progress(np.arange(s, e), out_ids, out_sims)
        if time.monotonic() >= deadline:
            return e
    return n


def best_new_similarity(vectors: np.ndarray, new_rows: np.ndarray) -> np.ndarray:
    """For every row of the scope, its highest similarity to any of ``new_rows``.

    The other half of an incremental update: one product new x all answers "is a new
    image nearer than my k-th neighbour?" for every existing image at once.
    """
    best = np.full(len(vectors), -np.inf, dtype=np.float32)
    for start in range(0, len(new_rows), BLOCK):
        block = new_rows[start:start + BLOCK]
        tile = _product(vectors[block], vectors)
        tile[np.arange(len(block)), block] = -np.inf
        np.maximum(best, tile.max(axis=0), out=best)
    return best


def best_new_candidates(
    vectors: np.ndarray, ids: np.ndarray, new_rows: np.ndarray, k: int = K,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows`` (default: every row), its k most similar among ``new_rows``
    (never itself). Call it for the rows ``best_new_similarity`` says a new image enters."""
    rows = np.arange(len(ids)) if rows is None else rows
    targets = vectors[rows]
    n = len(rows)
    take = min(k, len(new_rows))
    best_ids = np.full((n, max(take, 0)), -1, dtype=np.int64)
    best_sims = np.full((n, max(take, 0)), -np.inf, dtype=np.float32)
    if take <= 0:
        return best_ids, best_sims
    for start in range(0, len(new_rows), BLOCK):
        block = new_rows[start:start + BLOCK]
        tile = _product(targets, vectors[block])  # n x b
        same = rows[:, None] == block[None, :]
        tile[same] = -np.inf
        width = min(take, len(block))
        part, values = _best(tile, width)
        best_ids, best_sims = _sort_lists(
            np.concatenate([best_ids, ids[block][part]], 1),
            np.concatenate([best_sims, values], 1), take,
        )
    best_ids[~np.isfinite(best_sims)] = -1
    return best_ids, best_sims


def merge(
    ids_a: np.ndarray, sims_a: np.ndarray, ids_b: np.ndarray, sims_b: np.ndarray, k: int = K
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sets of neighbour lists row by row, keeping the k best; an id in both
    counts once (a pass that resumes may offer a row a list already holds)."""
    ids = np.concatenate([ids_a, ids_b], 1)
    sims = np.concatenate([sims_a, sims_b], 1).astype(np.float32)
    by_id = np.lexsort((-sims, ids), axis=1)
    sorted_ids = np.take_along_axis(ids, by_id, 1)
    repeat = np.zeros_like(sorted_ids, dtype=bool)
    repeat[:, 1:] = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0)
    drop = np.zeros_like(repeat)
    np.put_along_axis(drop, by_id, repeat, 1)
    sims = np.where(drop, -np.inf, sims)
    ids, sims = _sort_lists(ids, sims, k)
    ids[~np.isfinite(sims)] = -1
    return ids, sims


def scores(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean cosine distance to the neighbours or NaN, similarity of the k-th or -2)."""
    valid = np.isfinite(sims)
    count = valid.sum(axis=1)
    total = np.where(valid, sims, 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(count > 0, 1.0 - total / np.maximum(count, 1), np.nan)
    kth = np.where(valid[:, -1], sims[:, -1], -2.0) if sims.shape[1] else np.full(len(sims), -2.0)
    return score.astype(np.float64), kth.astype(np.float64)


# --- storage ---------------------------------------------------------------------------


@dataclass
class Stored:
    ids: np.ndarray  # embedding row ids with a stored list, ascending
    fingerprints: np.ndarray
    neighbour_ids: np.ndarray  # (m, K), -1 padded
    similarities: np.ndarray  # (m, K), -inf padded


def load_stored(project_id: str, model_key: str) -> Stored:
    """The scope's stored lists, in one binary COPY parsed straight into NumPy.

    Lists are padded to K in SQL, so every record has the same size (the ORM took 2 s for
    100,000 lists here, most of it building Python lists).
    """
    table = Neighbours._meta.db_table
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        padded = (
            "(neighbour_ids || array_fill(-1::int8, ARRAY[GREATEST(0, %s - "
            "cardinality(neighbour_ids))]))[1:%s], "
            "(similarities || array_fill('-Infinity'::float8, ARRAY[GREATEST(0, %s - "
            "cardinality(similarities))]))[1:%s]"
        )
        sql = f"COPY (SELECT embedding_id, fingerprint, {padded} FROM {table} "  # noqa: S608
        query = cursor.mogrify(
            sql + "WHERE project_id = %s AND model_key = %s ORDER BY embedding_id) "
            "TO STDOUT (FORMAT BINARY)",
            [K, K, K, K, project_id, model_key],
        )
        with cursor.copy(query) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
    # Binary COPY: 19-byte header, 2-byte trailer; per row an int16 field count, then each
    # field as int32 length + value; a 1-d array is 5 int32 (ndim, flags, element type,
    # length, lower bound) then int32 length + value per element. All big-endian.
    record = np.dtype([
        ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("fp_len", ">i4"), ("fp", ">f8"),
        ("nb_len", ">i4"), ("nb_head", ">i4", (5,)), ("nb", [("len", ">i4"), ("v", ">i8")], (K,)),
        ("sm_len", ">i4"), ("sm_head", ">i4", (5,)), ("sm", [("len", ">i4"), ("v", ">f8")], (K,)),
    ])
    body = data[19:-2]
    rows = np.frombuffer(body, dtype=record) if body else np.zeros(0, dtype=record)
    return Stored(
        ids=rows["id"].astype(np.int64),
        fingerprints=rows["fp"].astype(np.float64),
        neighbour_ids=rows["nb"]["v"].astype(np.int64).reshape(-1, K),
        similarities=rows["sm"]["v"].astype(np.float32).reshape(-1, K),
    )


@dataclass
class StoredMeta:
    ids: np.ndarray  # embedding row ids with a stored list, ascending
    fingerprints: np.ndarray
    kth: np.ndarray  # similarity of each list's k-th neighbour (-2: a short list)


def load_meta(project_id: str, model_key: str) -> StoredMeta:
    """Row ids, fingerprints and k-th similarities of the scope's lists (not the lists):
    all an incremental pass needs for every row. One bytea built by the server (24 bytes
    a row): a COPY hands each row to Python as its own message, 0.9 s at 100,000 here."""
    table = Neighbours._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(int8send(embedding_id) || float8send(fingerprint) || "  # noqa: S608
            f"float8send(kth), ''::bytea ORDER BY embedding_id) FROM {table} "
            "WHERE project_id = %s AND model_key = %s", [project_id, model_key])
        blob = cursor.fetchone()[0]
    record = np.dtype([("id", ">i8"), ("fp", ">f8"), ("kth", ">f8")])
    rows = np.frombuffer(bytes(blob), dtype=record) if blob else np.zeros(0, dtype=record)
    return StoredMeta(ids=rows["id"].astype(np.int64), fingerprints=rows["fp"].astype(np.float64),
                      kth=rows["kth"].astype(np.float32))


def load_lists(project_id: str, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stored lists of some rows, padded to K (-1 / -inf), in ``row_ids`` order."""
    out_ids = np.full((len(row_ids), K), -1, dtype=np.int64)
    out_sims = np.full((len(row_ids), K), -np.inf, dtype=np.float32)
    where = {row: i for i, row in enumerate(row_ids.tolist())}
    for start in range(0, len(row_ids), 10_000):
        chunk = row_ids[start:start + 10_000].tolist()
        for row, nb, sims in Neighbours.objects.filter(
            project_id=project_id, embedding_id__in=chunk,
        ).values_list("embedding_id", "neighbour_ids", "similarities"):
            i = where[row]
            out_ids[i, :len(nb)] = nb[:K]
            out_sims[i, :len(sims)] = sims[:K]
    return out_ids, out_sims


def naming(project_id: str, model_key: str, row_ids: np.ndarray) -> np.ndarray:
    """Rows whose list names any of ``row_ids`` (one scan of the scope's arrays in SQL)."""
    if not len(row_ids):
        return np.zeros(0, dtype=np.int64)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT embedding_id FROM {Neighbours._meta.db_table} "  # noqa: S608
            "WHERE project_id = %s AND model_key = %s AND neighbour_ids && %s::bigint[]",
            [project_id, model_key, row_ids.tolist()])
        return np.array(sorted(row for (row,) in cursor.fetchall()), dtype=np.int64)


_COLUMNS = ("embedding_id", "project_id", "model_key", "neighbour_ids", "similarities",
            "score", "kth", "fingerprint", "file_hash")


def write_lists(
    project_id: str,
    model_key: str,
    row_ids: np.ndarray,
    nb_ids: np.ndarray,
    nb_sims: np.ndarray,
    row_fingerprints: np.ndarray,
) -> int:
    """Upsert neighbour lists (COPY into a temporary table, one INSERT … ON CONFLICT).

    A row's file facts (hash, size, dimensions) survive when its vector is unchanged.
    Rows whose embedding was deleted meanwhile are skipped (the next run sees them gone).
    """
    if not len(row_ids):
        return 0
    score, kth = scores(nb_sims)
    table = Neighbours._meta.db_table
    embeddings = Embedding._meta.db_table
    keep = ", ".join(
        f"{name} = CASE WHEN abs({table}.fingerprint - EXCLUDED.fingerprint) <= "
        f"{FINGERPRINT_TOLERANCE} THEN {table}.{name} ELSE EXCLUDED.{name} END"
        for name in ("file_hash", "file_size", "width", "height", "map_x", "map_y")
    )
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[1:-1])
    columns = ", ".join(_COLUMNS)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS _insight_rows "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            raw = cursor.cursor
            with raw.copy(f"COPY _insight_rows ({columns}) FROM STDIN") as copy:
                for i, row_id in enumerate(row_ids.tolist()):
                    valid = nb_ids[i] >= 0
                    copy.write_row((
                        row_id, project_id, model_key,
                        nb_ids[i][valid].tolist(),
                        [round(float(s), 6) for s in nb_sims[i][valid]],
                        None if np.isnan(score[i]) else float(score[i]),
                        float(kth[i]), float(row_fingerprints[i]), "",
                    ))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _insight_rows r "  # noqa: S608
                f"WHERE EXISTS (SELECT 1 FROM {embeddings} e WHERE e.id = r.embedding_id) "
                f"ON CONFLICT (embedding_id) DO UPDATE SET {keep}, {updates}"
            )
            written = cursor.rowcount
            cursor.execute("TRUNCATE _insight_rows")
    return written


# --- the stage -------------------------------------------------------------------------


def get_state(project_id: str) -> InsightState:
    return InsightState.objects.get_or_create(project_id=str(project_id))[0]


def _set(record: InsightState, **fields: Any) -> None:
    changed = [name for name, value in fields.items() if getattr(record, name) != value]
    for name in changed:
        setattr(record, name, fields[name])
    if changed:
        record.save(update_fields=[*changed, "updated"])


def is_current(state: InsightState, ready: ProjectReadiness) -> bool:
    return (
        ready.state == ProjectReadiness.State.READY
        and state.state == State.READY
        and state.version == ready.updated
        and state.model_key == ready.active_model_key
        and state.build_cursor is None
        and state.fresh_since is None
    )


_Y2K = datetime(2000, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """A time as the exact cache's ``updated`` values are: µs since 2000-01-01 UTC."""
    return int((moment - _Y2K).total_seconds() * 1_000_000)


def analyse_project(
    project_id: str, *, hash_files: bool = True, budget_seconds: float | None = None,
) -> dict[str, Any]:
    """Bring the scope's neighbour lists, file facts and map up to date.

    What the worker's insight task runs, ``budget_seconds`` at a time: when the budget is
    spent the outcome says ``more`` and the caller queues a continuation. Progress lives
    in ``InsightState`` (a full build's cursor; lists, hashes and map positions already
    written), so a continuation, or a task redelivered after its worker was killed,
    resumes instead of starting over. Cheap when nothing changed. Waits (does nothing)
    while embeddings are still being computed: lists over a half-embedded project would be
    rebuilt moments later anyway.
    """
    project_id = str(project_id)
    started = time.monotonic()
    deadline = started + budget_seconds if budget_seconds is not None else float("inf")
    ready = readiness.get_readiness(project_id)
    state = get_state(project_id)
    if ready.state != ProjectReadiness.State.READY:
        _set(state, state=State.WAITING, total=ready.total,
             analysed=state.analysed if state.build_cursor is not None else 0)
        return {"project": project_id, "skipped": "embeddings not ready"}
    if is_current(state, ready):
        return {"project": project_id, "skipped": "up to date"}
    key = ready.active_model_key
    version = ready.updated
    dims = (
        Embedding.objects.filter(project_id=project_id, model_key=key,
                                 status=Embedding.Status.DONE)
        .values_list("dims", flat=True).first()
    )
    if state.model_key and state.model_key != key:
        _set(state, build_cursor=None, fresh_since=None)
    Neighbours.objects.filter(project_id=project_id).exclude(model_key=key).delete()
    if dims is None:
        Neighbours.objects.filter(project_id=project_id).delete()
        _set(state, state=State.READY, model_key=key, version=version, total=0, analysed=0,
             complete=True, build_cursor=None, fresh_since=None)
        return {"project": project_id, "rows": 0}
    matrix = exact.get_matrix(project_id, key, int(dims), ("insight", version))
    ids, vectors = matrix.ids, matrix.vectors
    n = len(ids)
    fps = fingerprints(vectors)
    outcome: dict[str, Any] = {"project": project_id, "rows": n, "full": False,
                               "recomputed": 0, "written": 0, "hashed": 0}

    if state.build_cursor is None:
        stored = load_meta(project_id, key)
        plan = _plan(stored, ids, fps, matrix, state)
        if plan is None:  # a full build starts
            _set(state, state=State.ANALYSING, total=n, analysed=0, model_key=key,
                 episode=state.episode + 1, build_cursor=-1, pass_version=version,
                 pass_started=matrix.as_of, fresh_since=None)
        else:
            _set(state, state=State.ANALYSING, total=n, model_key=key,
                 analysed=min(state.analysed, n) if state.complete else 0)
            outcome.update(_incremental(project_id, key, plan, ids, vectors, fps))
            _set(state, fresh_since=None, pass_started=matrix.as_of)
    if state.build_cursor is not None:
        outcome["full"] = True
        _set(state, state=State.ANALYSING, total=n, model_key=key)
        finished = _full_build(project_id, key, state, ids, vectors, fps, deadline)
        outcome["recomputed"] = outcome["written"] = finished
        if state.build_cursor is not None:
            return _more(outcome, started)
        _delete_gone(project_id, key, ids)
        if state.pass_version != version:
            # Images arrived while the build spanned tasks: lists written before them may
            # lack them. The next pass merges every row changed since the build began.
            _set(state, fresh_since=state.pass_started - timedelta(seconds=exact.RECENT_MARGIN),
                 complete=True)
            return _more(outcome, started)
    # Each step makes progress: the deadline only ends a step after some work was done.
    if outcome["written"] and time.monotonic() >= deadline:
        return _more(outcome, started)
    if hash_files:
        outcome["hashed"], done = hash_missing_files(project_id, key, deadline=deadline)
        if not done:
            return _more(outcome, started)
    if (outcome["written"] or outcome["hashed"]) and time.monotonic() >= deadline:
        return _more(outcome, started)
    from similarity import map as project_map

    outcome["mapped"] = project_map.update_map(project_id, key, ids, vectors)
    elapsed = time.monotonic() - started
    _set(state, state=State.READY, analysed=n, version=version, complete=True,
         seconds=round(elapsed, 3), build_cursor=None)
    _announce(project_id, state, ready)
    logger.info("Insight for scope %s: %d images, %d lists recomputed, %d written, %d files "
                "hashed in %.2f s%s", project_id, n, outcome["recomputed"], outcome["written"],
                outcome["hashed"], elapsed, " (full build)" if outcome["full"] else "")
    outcome["seconds"] = elapsed
    return outcome


def _more(outcome: dict[str, Any], started: float) -> dict[str, Any]:
    outcome["more"] = True
    outcome["seconds"] = time.monotonic() - started
    return outcome


@dataclass
class Plan:
    """An incremental pass: which lists to recompute and which to merge new images into."""

    added: np.ndarray  # positions of rows that get a full list (new, re-embedded, fresh)
    kept_positions: np.ndarray  # positions of rows whose stored list is kept
    kept_kth: np.ndarray  # their k-th similarities (-2: a short list)
    gone: np.ndarray  # row ids with a stored list that left the scope
    stale: np.ndarray  # row ids no kept list may name: gone, re-embedded or fresh


def _plan(stored: StoredMeta, ids: np.ndarray, fps: np.ndarray, matrix: exact.Matrix,
          state: InsightState) -> Plan | None:
    """What an incremental pass must do, or None when a full build is cheaper."""
    n = len(ids)
    position = np.minimum(np.searchsorted(ids, stored.ids), max(n - 1, 0))
    present = (ids[position] == stored.ids) if n else np.zeros(len(stored.ids), bool)
    same = present & np.isclose(fps[position], stored.fingerprints, rtol=0,
                                atol=FINGERPRINT_TOLERANCE)
    if state.fresh_since is not None and matrix.updated is not None:
        # rows that changed while a full build spanned tasks: merge them again
        fresh = np.zeros(n, dtype=bool)
        fresh[matrix.updated >= _micros(state.fresh_since)] = True
        same &= ~fresh[position]
    kept_positions = position[same]
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept_positions] = True
    added = np.nonzero(~is_kept)[0]
    if len(kept_positions) == 0 or len(added) > REBUILD_SHARE * n:
        return None
    stale = stored.ids[~same]
    if state.pass_started is not None:
        # rows that moved away since the last pass (their list may already have been
        # rewritten in their new scope, so this scope's lists no longer show them)
        since = state.pass_started - timedelta(seconds=exact.RECENT_MARGIN)
        moved = np.fromiter(
            Embedding.objects.filter(updated__gte=since, status=Embedding.Status.DONE)
            .exclude(project_id=state.project_id).values_list("pk", flat=True), np.int64)
        stale = np.union1d(stale, moved)
    return Plan(added=added, kept_positions=kept_positions, kept_kth=stored.kth[same],
                gone=stored.ids[~present], stale=stale)


def _incremental(project_id: str, key: str, plan: Plan, ids: np.ndarray,
                 vectors: np.ndarray, fps: np.ndarray) -> dict[str, Any]:
    """New and re-embedded rows get full lists; lists naming a row that left are
    recomputed; every other list takes in the new rows nearer than its k-th.

    Reads only the lists it merges into: which lists name a stale row is asked of the
    database, and which lists a new row enters follows from their stored k-th similarity.
    """
    if len(plan.gone):  # deleted rows cascade; these moved to another scope
        Neighbours.objects.filter(embedding_id__in=plan.gone.tolist(),
                                  project_id=project_id).delete()
    added, kept_positions = plan.added, plan.kept_positions
    dirty = np.isin(ids[kept_positions], naming(project_id, key, plan.stale))
    recompute = np.union1d(added, kept_positions[dirty])
    new_ids, new_sims = top_k(vectors, ids, recompute)
    written = write_lists(project_id, key, ids[recompute], new_ids, new_sims, fps[recompute])
    clean = ~dirty
    clean_positions = kept_positions[clean]
    if len(added) and len(clean_positions):
        best = best_new_similarity(vectors, added)[clean_positions]
        # a short list (k-th stored as -2) takes any new image; a full one a nearer one
        enters = np.isfinite(best) & (best > plan.kept_kth[clean])
        if enters.any():
            rows = clean_positions[enters]
            old_ids, old_sims = load_lists(project_id, ids[rows])
            cand_ids, cand_sims = best_new_candidates(vectors, ids, added, rows=rows)
            merged_ids, merged_sims = merge(old_ids, old_sims, cand_ids, cand_sims)
            written += write_lists(project_id, key, ids[rows], merged_ids, merged_sims,
                                   fps[rows])
    return {"recomputed": len(recompute), "written": written}


def _full_build(project_id: str, key: str, state: InsightState, ids: np.ndarray,
                vectors: np.ndarray, fps: np.ndarray, deadline: float) -> int:
    """Lists for every row after the build's cursor, block by block, until done or the
    deadline; the cursor and "analysed" are saved after each block, so the next task
    (or a redelivered one) goes on from there. Returns the number of lists written."""
    start = int(np.searchsorted(ids, state.build_cursor, side="right"))
    written = 0

    def write_block(block: np.ndarray, block_ids: np.ndarray, block_sims: np.ndarray) -> None:
        nonlocal written
        write_lists(project_id, key, ids[block], block_ids, block_sims, fps[block])
        written += len(block)
        _set(state, analysed=int(block[-1]) + 1, build_cursor=int(ids[block[-1]]))

    reached = build_lists(vectors, ids, start, progress=write_block, deadline=deadline)
    if reached >= len(ids):
        _set(state, build_cursor=None, analysed=len(ids))
    return written


def _delete_gone(project_id: str, key: str, ids: np.ndarray) -> None:
    """Lists of rows that left the scope (moved away) while a full build ran."""
    stored = Neighbours.objects.filter(project_id=project_id, model_key=key)
    gone = np.setdiff1d(np.fromiter(stored.values_list("embedding_id", flat=True), np.int64),
                        ids)
    if len(gone):
        stored.filter(embedding_id__in=gone.tolist()).delete()


def _announce(project_id: str, state: InsightState, ready: ProjectReadiness) -> None:
    """"Duplicates and outliers are ready", once per embedding episode of the scope.

    Every project gets it (a small one moments after "Similarity search is ready", since
    the analysis is its own task now). The key names the readiness episode, and the
    notification table's unique key makes it exactly-once even when two workers finish
    the same scope; later passes of the same episode (deletes, moves) stay silent.
    """
    from django.urls import NoReverseMatch, reverse

    episode = ready.episode
    if state.announced_episode > episode:  # it stores the episode announced, plus one
        return
    try:
        url = reverse("similarity:insight-duplicates", args=[project_id])
    except NoReverseMatch:
        url = ""
    tag = project_id if len(project_id) <= 64 else hashlib.sha256(project_id.encode()).hexdigest()[:12]
    notifications.notify(
        project_id,
        _("Duplicates and outliers are ready: %(count)d images analysed") % {"count": state.total},
        level=Notification.Level.SUCCESS,
        url=url,
        key=f"insight:{tag}:{episode}",
    )
    _set(state, announced_episode=episode + 1)


def hash_missing_files(
    project_id: str, model_key: str, *, chunk: int = 200, deadline: float = float("inf"),
) -> tuple[int, bool]:
    """SHA-256, size and pixel dimensions of files not hashed yet (byte-identical groups).

    Returns how many were hashed and whether none is left (False: the deadline came)."""
    from PIL import Image

    field = similarity_settings.IMAGE_FIELD
    manager = registry.get_asset_model()._default_manager
    hashed = 0
    while True:
        rows = list(
            Neighbours.objects.filter(project_id=project_id, model_key=model_key, file_hash="")
            .values_list("embedding_id", "embedding__asset_id")[:chunk]
        )
        if not rows:
            return hashed, True
        if hashed and time.monotonic() >= deadline:
            return hashed, False
        assets = manager.in_bulk([asset_id for _, asset_id in rows])
        updates, unreadable = [], 0
        for row_id, asset_id in rows:
            facts = {"file_hash": "-", "file_size": None, "width": None, "height": None}
            asset = assets.get(asset_id)
            file = getattr(asset, field, None) if asset is not None else None
            try:
                if file:
                    digest = hashlib.sha256()
                    size = 0
                    with file.open("rb") as handle:
                        for part in iter(lambda h=handle: h.read(1 << 20), b""):
                            digest.update(part)
                            size += len(part)
                        handle.seek(0)
                        facts.update(file_hash=digest.hexdigest(), file_size=size)
                        with Image.open(handle) as image:  # the header only
                            facts.update(width=image.width, height=image.height)
            except Exception:  # unreadable or missing: no facts, never a failed stage
                unreadable += 1
            updates.append(Neighbours(embedding_id=row_id, **facts))
        if unreadable:
            logger.warning("Insight: %d files of scope %s could not be read", unreadable,
                           project_id)
        Neighbours.objects.bulk_update(updates, ["file_hash", "file_size", "width", "height"])
        hashed += len(updates)


def after_embedding(project_id: str) -> None:
    """Called by ``tasks.embed_project`` once a project is ready: queues the insight task
    (its own budgeted task, so embedding workers are never held by it); never raises."""
    from similarity import insight_tasks

    try:
        insight_tasks.request_insight(project_id)
    except Exception:
        logger.exception("Could not queue insight for scope %s; the sweep retries it",
                         project_id)


def delete_orphans() -> int:
    """Lists and marks of embedding rows that no longer exist (no cascade: see models)."""
    from similarity.insight_models import DuplicateMark

    rows = Embedding.objects.filter(pk=OuterRef("embedding_id"))
    # a ready scope's own task removes its orphans, and needs them to know which of its
    # lists name a deleted image (it does not read every list)
    ready = ProjectReadiness.objects.filter(state=ProjectReadiness.State.READY)
    deleted = Neighbours.objects.filter(~Exists(rows)).exclude(
        project_id__in=ready.values("project_id")).delete()[0]
    return deleted + DuplicateMark.objects.filter(~Exists(rows)).delete()[0]


def sweep() -> list[str]:
    """Queue the insight task for ready scopes whose lists are older than their embeddings
    (deletes and moves change the rows without an embedding task) or whose task died."""
    delete_orphans()
    states = {s.project_id: s for s in InsightState.objects.all()}
    done = []
    for ready in ProjectReadiness.objects.filter(state=ProjectReadiness.State.READY):
        state = states.get(ready.project_id)
        if state is None or not is_current(state, ready):
            after_embedding(ready.project_id)  # queued once per scope
            done.append(ready.project_id)
    return done
