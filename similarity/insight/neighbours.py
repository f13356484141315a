"""Exact k-nearest-neighbour lists by cosine, in blocks: pure NumPy and torch, no database.

Why a stored neighbour graph: near-duplicate groups and the "most unusual" ranking both
need every image's nearest neighbours, and computing them per page view is O(n²). The
worker computes them once (blocked matrix products, ``BLOCK`` rows at a time, so memory
stays O(BLOCK·n), never O(n²)) and then keeps them current incrementally:

- images that are new (or re-embedded: their vector's fingerprint changed) get a full
  list computed against the whole scope (``top_k``; the first build: ``build_lists``);
- every other image only needs to know whether a new image is nearer than its k-th
  neighbour: one product new x all gives both directions (``best_new_similarity``,
  ``best_new_candidates``), and lists are merged (``merge``);
- images whose list names an image that left are recomputed, and only those.

Similarity is the same cosine as search, over the same unit vectors. Results are exact
(recall 1.0).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

#: Neighbours kept per image.
K = 10
#: Rows per matrix product. With COLUMNS this bounds one similarity tile to
#: 2048 x 16384 x 4 B = 128 MiB whatever the scope's size: memory is O(BLOCK·COLUMNS).
BLOCK = 2048
#: Columns per product.
COLUMNS = 16384
#: Fingerprints are compared with this tolerance (float32 products, any BLAS blocking).
FINGERPRINT_TOLERANCE = 1e-4
#: Rows per square tile of the full build. Each tile is computed once and serves both of
#: its row blocks (the similarity matrix is symmetric): 4096 x 4096 x 4 B = 64 MiB.
SYM_BLOCK = 4096
_FINGERPRINT_SEED = 13


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
