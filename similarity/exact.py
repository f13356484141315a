"""Exact scans in NumPy over a per-process cache of each project's vectors.

PostgreSQL stays the source of truth; this is a read cache for exact search. Measured
here (2 cores, 384 dims, halfvec): the SQL exact scan costs about 0.45 µs per row
(20,000 rows: 9.5 ms; 80,000: 42 ms; parallel workers made small scans slower), while a
matrix-vector product over the same vectors takes about 0.04 µs per row. A project's
matrix is loaded with one binary COPY and keyed by the readiness record's version, which
every write of embedding rows bumps, so a search never reads vectors older than the last
refresh. The cache is bounded in bytes (least recently used projects go first); a
project that does not fit is searched with the SQL scan instead.

Rows are identified by our own embedding row id (always a 64-bit integer), never by the
host's asset key, which may be a 4-byte integer, a UUID or a string: the caller maps the
chosen rows to assets with one small query. Loads are single-flight per project, so
concurrent requests after a change share one load (and one copy) instead of each holding
their own beyond the budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from similarity.conf import similarity_settings
from similarity.models import Embedding


@dataclass(frozen=True)
class Matrix:
    ids: np.ndarray  # embedding row ids, int64, ascending
    vectors: np.ndarray  # float32, rows L2-normalised
    version: Any

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.vectors.nbytes


_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], Matrix] = OrderedDict()
_loading: dict[tuple[str, str], threading.Lock] = {}


def budget_bytes() -> int:
    return int(similarity_settings.EXACT_CACHE_MB) * 2**20


def fits(rows: int, dims: int) -> bool:
    return rows * (dims * 4 + 8) <= budget_bytes()


def _cached(key: tuple[str, str], version: Any) -> Matrix | None:
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.version == version:
            _cache.move_to_end(key)
            return cached
    return None


def get_matrix(project_id: str, model_key: str, dims: int, version: Any) -> Matrix:
    """The project's vectors at ``version``, loaded once however many ask at a time."""
    key = (project_id, model_key)
    cached = _cached(key, version)
    if cached is not None:
        return cached
    with _lock:
        flight = _loading.setdefault(key, threading.Lock())
    with flight:  # the first caller loads; the others wait here and find it cached
        cached = _cached(key, version)
        if cached is not None:
            return cached
        with _lock:
            _cache.pop(key, None)  # drop the stale copy before holding a new one
        matrix = _load(project_id, model_key, dims, version)
        with _lock:
            _cache[key] = matrix
            _cache.move_to_end(key)
            while sum(m.nbytes for m in _cache.values()) > budget_bytes() and len(_cache) > 1:
                _cache.popitem(last=False)
    return matrix


def _load(project_id: str, model_key: str, dims: int, version: Any) -> Matrix:
    """One binary COPY; fixed-size rows parse straight into NumPy."""
    table = Embedding._meta.db_table
    connection.ensure_connection()
    raw = connection.connection
    chunks = []
    with raw.cursor() as cursor:
        query = cursor.mogrify(
            f"COPY (SELECT id, vector FROM {table} "  # noqa: S608 (table name is ours)
            "WHERE project_id = %s AND model_key = %s AND status = 'done' AND dims = %s "
            "ORDER BY id) TO STDOUT (FORMAT BINARY)",
            [project_id, model_key, dims],
        )
        with cursor.copy(query) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
    data = b"".join(chunks)
    # Binary COPY: 19-byte header, then per row: int16 field count, int32 length + int64
    # row id, int32 length + halfvec (int16 dims, int16 unused, dims x float16), all
    # big-endian; a 2-byte trailer.
    record = np.dtype([
        ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
        ("dims", ">i2"), ("unused", ">i2"), ("vector", ">f2", (dims,)),
    ])
    body = data[19:-2]
    rows = np.frombuffer(body, dtype=record) if body else np.zeros(0, dtype=record)
    vectors = rows["vector"].astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms == 0, 1, norms)
    return Matrix(ids=rows["id"].astype(np.int64), vectors=vectors, version=version)


def top_k(
    matrix: Matrix,
    query: np.ndarray,
    k: int,
    *,
    least: bool,
    allowed: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """(row id, cosine distance) of the k nearest (or farthest), ties by row id.

    ``allowed`` keeps only those row ids (an access filter or a narrowed scope);
    ``excluded`` drops row ids (the query images themselves).
    """
    if not len(matrix.ids):
        return []
    q = np.asarray(query, dtype=np.float32)
    q = q / (np.linalg.norm(q) or 1.0)
    similarity = matrix.vectors @ q
    score = similarity if least else -similarity  # ascending score = wanted order
    keep = None
    if allowed is not None:
        keep = np.isin(matrix.ids, allowed, assume_unique=True)
    if excluded is not None and len(excluded):
        drop = np.isin(matrix.ids, excluded)
        keep = ~drop if keep is None else keep & ~drop
    if keep is not None:
        score = np.where(keep, score, np.inf)
        k = min(k, int(keep.sum()))
        if k <= 0:
            return []
    k = min(k, len(score))
    if k < len(score):
        candidates = np.argpartition(score, k - 1)[:k]
    else:
        candidates = np.arange(len(score))
    order = np.lexsort((matrix.ids[candidates], score[candidates]))
    chosen = candidates[order]
    distances = 1.0 - similarity[chosen].astype(np.float64)
    return list(zip(matrix.ids[chosen].tolist(), distances.tolist(), strict=True))


def clear() -> None:
    with _lock:
        _cache.clear()
