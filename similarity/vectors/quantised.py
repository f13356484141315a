"""An int8 copy of a scope's unit vectors that still answers exactly.

Why: an exact scan is bound by memory bandwidth (a float32 1M x 384 matrix is 1.5 GB to
read per query, ~50 ms here, and does not fit the default 512 MiB cache). Each row is
kept as int8 codes with its own scale, ``x ≈ scale · codes`` (384 bytes instead of 1,536),
plus ``bound``: an upper limit on how far ``scale · codes · y`` can be from ``x · y`` for any
unit query ``y``: the residual's norm (Cauchy-Schwarz) plus the float32 rounding of the
scan's sum. The scan ranks approximately; the answer stays exact because every row whose
score could still beat the k-th is re-ranked with its exact vector:

    lo = approx - bound,  hi = approx + bound,  tau = k-th largest lo
    candidates = rows with hi >= tau      (any other row is beaten by k rows for sure)

On 1M clustered vectors that is 500-900 candidates for k = 100, read back from
PostgreSQL by id. The scan is a small Numba kernel run on one slice of the rows per core
(threads of our own, so concurrent requests in one process never share Numba's
threading layer); without Numba it falls back to NumPy in blocks (exact too, slower).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Rows converted at a time by the NumPy fallback (bounds its float32 temporary).
BLOCK = 262_144
#: Below this many rows one thread scans them all (threads cost more than they save).
PARALLEL_FROM = 50_000


class Int8Rows:
    """Rows as int8 codes with a scale and an error bound each; slices and gathers like
    an array (``rows[a:b]``, ``rows[positions]``), and assigning float32 unit rows (or
    other ``Int8Rows``) to a slice quantises them in place."""

    __slots__ = ("bounds", "codes", "scales")

    def __init__(self, codes: np.ndarray, scales: np.ndarray, bounds: np.ndarray) -> None:
        self.codes, self.scales, self.bounds = codes, scales, bounds

    @classmethod
    def empty(cls, rows: int, dims: int) -> Int8Rows:
        return cls(np.zeros((rows, dims), np.int8), np.zeros(rows, np.float32),
                   np.zeros(rows, np.float32))

    @classmethod
    def of(cls, units: np.ndarray) -> Int8Rows:
        rows = cls.empty(*units.shape)
        rows[0:len(units)] = units
        return rows

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.scales.nbytes + self.bounds.nbytes

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: Any) -> Int8Rows:
        return Int8Rows(self.codes[index], self.scales[index], self.bounds[index])

    def __setitem__(self, index: slice, value: Any) -> None:
        """Quantise float32 unit rows (an array) into ``index``, or float16 rows not yet
        normalised (``Raw``: normalised on the way, in one pass), or copy ``Int8Rows``."""
        raw = isinstance(value, Raw)
        if isinstance(value, Int8Rows):
            self.codes[index], self.scales[index] = value.codes, value.scales
            self.bounds[index] = value.bounds
            return
        start = index.start or 0
        for at in range(0, len(value), BLOCK):
            part = value[at:at + BLOCK]
            codes, scales, bounds = pack(part) if raw else quantise(
                np.asarray(part, dtype=np.float32))
            where = slice(start + at, start + at + len(part))
            self.codes[where], self.scales[where], self.bounds[where] = codes, scales, bounds


#: float32 value of every float16 bit pattern (the pack kernel converts by lookup: NumPy's
#: astype from big-endian float16 cost 4.6 s per 1M x 384 here).
HALF_TABLE = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)


def pack(halves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, scales, bounds) of float16 rows (any byte order), normalised first as
    ``exact`` caches them: one pass a row in Numba on every core; without Numba,
    ``quantise`` of the normalised float32 rows."""
    kernels = _numba_kernels()
    if kernels is None:
        raw = halves.astype(np.float32)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return quantise(raw / np.where(norms == 0, 1, norms))
    order = halves.dtype.byteorder if halves.dtype.byteorder in "<>" else "="
    bits = halves.view(np.dtype(order + "u2")).astype(np.uint16)  # the bit patterns, native
    n, dims = bits.shape
    codes = np.empty((n, dims), np.int8)
    scales = np.empty(n, np.float32)
    bounds = np.empty(n, np.float32)
    rounding = np.float32(127.0 * dims ** 1.5 * 2.0 ** -23)
    _split(kernels[1], n, bits, HALF_TABLE, codes, scales, bounds, rounding)
    return codes, scales, bounds


class Raw:
    """Float16 rows not normalised yet (a COPY's halfvec column, say), handed to ``pack``
    a block at a time."""

    def __init__(self, halves: np.ndarray) -> None:
        self.halves = halves

    def __len__(self) -> int:
        return len(self.halves)

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.halves[index]


def quantise(units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, scales, bounds) of float32 rows: symmetric per-row int8.

    ``bounds`` covers the residual (``||x - scale · codes||``, times ``||y|| = 1``) and the
    float32 sum of the scan: at most ``dims · 2⁻²⁴ · Σ|codes · y|`` in any summation order,
    and ``Σ|codes · y| <= 127 · ||y||₁ <= 127 · √dims``.
    """
    dims = units.shape[1]
    peak = np.abs(units).max(axis=1)
    scales = (np.where(peak > 0, peak, 1.0) / 127.0).astype(np.float32)
    codes = np.clip(np.rint(units / scales[:, None]), -127, 127).astype(np.int8)
    residual = np.linalg.norm(units - codes.astype(np.float32) * scales[:, None], axis=1)
    rounding = scales * (127.0 * dims ** 1.5 * 2.0 ** -23)
    return codes, scales, (residual + rounding + 1e-6).astype(np.float32)


# --- the scan ---------------------------------------------------------------------------

_kernels: tuple[Callable[..., None], Callable[..., None]] | None = None
_missing = False
_pool: ThreadPoolExecutor | None = None


def _numba_kernels() -> tuple[Callable[..., None], Callable[..., None]] | None:
    """(scan, pack), compiled on first use (about a second), or None without Numba."""
    global _kernels, _missing
    if _kernels is None and not _missing:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency; kept for hosts without it
            logger.warning("numba is not installed: int8 scans run in NumPy blocks (slower)")
            _missing = True
            return None

        @numba.njit(nogil=True, fastmath=True, cache=False)
        def dot_rows(start, stop, codes, y, scales, out):  # pragma: no cover - compiled
            dims = codes.shape[1]
            for i in range(start, stop):
                acc = np.float32(0.0)
                for j in range(dims):
                    acc += np.float32(codes[i, j]) * y[j]
                out[i] = acc * scales[i]

        @numba.njit(nogil=True, cache=False)
        def pack_rows(start, stop, halves, table, codes, scales, bounds, rounding):  # pragma: no cover
            # halves: float16 bit patterns (native uint16); table: their float32 values
            dims = halves.shape[1]
            row = np.empty(dims, np.float32)
            for i in range(start, stop):
                total = 0.0
                for j in range(dims):
                    value = table[halves[i, j]]
                    row[j] = value
                    total += np.float64(value) * value
                norm = np.sqrt(total)
                inv = np.float32(1.0 / norm if norm > 0 else 1.0)
                peak = np.float32(0.0)
                for j in range(dims):
                    row[j] = row[j] * inv
                    peak = max(peak, abs(row[j]))
                scale = np.float32(peak / 127.0 if peak > 0 else 1.0 / 127.0)
                residual = 0.0
                for j in range(dims):
                    code = min(np.float32(127.0), max(np.float32(-127.0), np.rint(row[j] / scale)))
                    codes[i, j] = np.int8(code)
                    diff = np.float64(row[j]) - np.float64(np.float32(code) * scale)
                    residual += diff * diff
                scales[i] = scale
                bounds[i] = np.float32(np.sqrt(residual) + scale * rounding + 2e-6)

        _kernels = (dot_rows, pack_rows)
    return _kernels


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1),
                                   thread_name_prefix="similarity-scan")
    return _pool


def _split(kernel: Callable[..., None], n: int, *args: Any) -> None:
    """Run ``kernel(start, stop, *args)`` over [0, n) on every core (one slice a thread;
    the kernels release the GIL), or inline for small n."""
    workers = max(1, os.cpu_count() or 1)
    if n < PARALLEL_FROM or workers == 1:
        kernel(0, n, *args)
        return
    edges = np.linspace(0, n, workers + 1).astype(np.int64)
    jobs = [_threads().submit(kernel, int(a), int(b), *args) for a, b in itertools.pairwise(edges)]
    for job in jobs:
        job.result()


def approximate(rows: Int8Rows, query: np.ndarray) -> np.ndarray:
    """``scale · codes · query`` of every row (float32); within ``rows.bounds`` of exact."""
    n = len(rows)
    y = np.ascontiguousarray(query, dtype=np.float32)
    out = np.empty(n, dtype=np.float32)
    kernels = _numba_kernels()
    if kernels is None:
        for at in range(0, n, BLOCK):
            part = rows.codes[at:at + BLOCK].astype(np.float32)
            out[at:at + BLOCK] = (part @ y) * rows.scales[at:at + BLOCK]
        return out
    _split(kernels[0], n, rows.codes, y, rows.scales, out)
    return out


def candidates(rows: Int8Rows, query: np.ndarray, k: int,
               keep: np.ndarray | None) -> np.ndarray:
    """Positions of the rows that may be among the k highest ``x · query`` (a superset,
    never missing one); ``keep`` masks out rows that must not rank."""
    approx = approximate(rows, query)
    lo = approx - rows.bounds
    hi = approx + rows.bounds
    if keep is not None:
        lo[~keep] = -np.inf
        hi[~keep] = -np.inf
    live = len(lo) if keep is None else int(keep.sum())
    k = min(k, live)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    tau = np.partition(lo, len(lo) - k)[len(lo) - k]
    return np.flatnonzero(hi >= tau)
