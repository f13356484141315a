"""The int8 cache layout (issue 27): its error bound holds, even for the worst query; its
scans answer exactly what the float32 layout and the SQL scan answer, in both orders, with
access narrowing and excluded rows, and after incremental refreshes; and the "auto" layout
picks it only when float32 would not fit the cache."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone
from pgvector import HalfVector

from similarity.models import Embedding
from similarity.testing import clustered_unit_vectors
from similarity.vectors import exact, quantised
from similarity.vectors.quantised import Int8Rows
from tests.test_exact_incremental import DIMS, Scope


@pytest.fixture(autouse=True)
def _empty_cache():
    exact.clear()
    yield
    exact.clear()


def units(count: int, dims: int, seed: int) -> np.ndarray:
    return clustered_unit_vectors(count, dims, clusters=20, seed=seed)


def test_the_bound_holds_even_for_the_query_that_hits_it_hardest():
    rows = units(4000, 384, seed=3)
    packed = Int8Rows.of(rows)
    residual = rows - packed.codes.astype(np.float32) * packed.scales[:, None]
    rng = np.random.default_rng(0)
    queries = [*rng.standard_normal((8, 384)).astype(np.float32), *residual[:8], *rows[:8]]
    for query in queries:
        query = query / np.linalg.norm(query)
        error = np.abs(quantised.approximate(packed, query) - rows @ query)
        assert (error <= packed.bounds).all(), float((error - packed.bounds).max())
    # the residual's own direction is Cauchy-Schwarz's worst case: the bound is nearly met
    worst = residual[0] / np.linalg.norm(residual[0])
    error = abs(float(quantised.approximate(packed[0:1], worst)[0] - rows[0] @ worst))
    assert 0.9 * np.linalg.norm(residual[0]) <= error <= float(packed.bounds[0])
    assert packed.nbytes == 4000 * (384 + 8)  # a quarter of float32's 4000 x 1536


def test_the_numba_scan_equals_the_numpy_fallback(monkeypatch):
    rows = Int8Rows.of(units(120_000, 64, seed=4))  # above PARALLEL_FROM: the threaded scan
    query = units(1, 64, seed=5)[0]
    fast = quantised.approximate(rows, query)
    assert quantised._numba_kernels() is not None  # numba is a dependency
    raw = (units(120_000, 64, seed=8) * np.linspace(0.5, 3, 120_000, dtype=np.float32)[:, None])
    raw = raw.astype(">f2")  # big-endian float16, as a binary COPY hands halfvec over
    packed = quantised.pack(raw)  # normalises and quantises in one pass
    monkeypatch.setattr(quantised, "_kernels", None)
    monkeypatch.setattr(quantised, "_missing", True)  # as on a host without numba
    slow = quantised.approximate(rows, query)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    reference = quantised.pack(raw)
    assert (packed[0] != reference[0]).mean() < 1e-4  # a code may round the other way
    np.testing.assert_allclose(packed[1], reference[1], rtol=1e-5)
    np.testing.assert_allclose(packed[2], reference[2], atol=1e-5)
    # and the one-pass bound holds against the exact unit rows
    raw = raw.astype(np.float32)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    error = np.abs(quantised.approximate(Int8Rows(*packed), query) - unit @ query)
    assert (error <= packed[2]).all()


def test_candidates_never_miss_one_of_the_k_best():
    rows = units(50_000, 384, seed=6)
    packed = Int8Rows.of(rows)
    rng = np.random.default_rng(2)
    for trial in range(6):
        query = rows[rng.integers(len(rows))] + rng.standard_normal(384).astype(np.float32) * 0.03
        query = (query / np.linalg.norm(query)) * (-1 if trial % 2 else 1)
        keep = rng.random(len(rows)) > 0.3 if trial >= 4 else None
        found = set(quantised.candidates(packed, query, 100, keep).tolist())
        scores = np.where(keep, rows @ query, -np.inf) if keep is not None else rows @ query
        best = set(np.argsort(-scores, kind="stable")[:100].tolist())
        assert best <= found
        assert len(found) < 5_000  # a re-rank of a few hundred rows, not a scan


def top(matrix, query, **kwargs):
    return exact.top_k(matrix, query, 25, **kwargs)


def assert_int8_answers_like_float32(s: Scope, version) -> exact.Matrix:
    int8 = exact.get_matrix(s.scope, s.key, DIMS, version, "int8")
    int8.path = exact.last_path.value
    full = exact.get_matrix(s.scope, s.key, DIMS, version, "float32")
    assert int8.layout == "int8" and full.layout == "float32"
    rng = np.random.default_rng(7)
    some = full.ids[::7]
    for query in rng.standard_normal((5, DIMS)).astype(np.float32):
        for least in (False, True):
            for allowed, excluded in ((None, None), (some, None), (None, full.ids[:3])):
                got = top(int8, query, least=least, allowed=allowed, excluded=excluded)
                want = top(full, query, least=least, allowed=allowed, excluded=excluded)
                assert [r for r, _ in got] == [r for r, _ in want]
                np.testing.assert_allclose([d for _, d in got], [d for _, d in want], atol=1e-6)
    return int8


@pytest.mark.django_db
def test_int8_scans_answer_exactly_what_float32_answers_through_refreshes():
    s = Scope()
    s.add(900)
    first = assert_int8_answers_like_float32(s, "v1")
    # appends, a re-embed, deletes: followed incrementally, still exact
    s.add(60)
    redo = s.rows()[5]
    Embedding.objects.filter(pk=redo).update(
        vector=HalfVector(units(1, DIMS, seed=99)[0].astype(np.float16)), updated=timezone.now())
    Embedding.objects.filter(pk__in=s.rows()[10:40]).delete()
    second = assert_int8_answers_like_float32(s, "v2")
    assert (first.path, second.path) == ("loaded", "refreshed")  # no reload
    assert second.buffer is first.buffer  # appended into the spare rows, in place
    assert second.ids.tolist() == s.rows()


@pytest.mark.django_db
def test_auto_picks_int8_only_when_float32_does_not_fit(settings):
    rows = 10_000
    f32, i8 = exact.row_bytes(384, "float32") * rows, exact.row_bytes(384, "int8") * rows
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": (f32 + 1) / 2**20}
    assert exact.layout_for(rows, 384) == "float32"
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": (f32 - 1) / 2**20}
    assert exact.layout_for(rows, 384) == "int8"
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": (i8 - 1) / 2**20}
    assert exact.layout_for(rows, 384) is None  # the SQL scan answers
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": 512,
                           "EXACT_CACHE_LAYOUT": "int8"}
    assert exact.layout_for(rows, 384) == "int8"
    # a million 384-d rows fit the default 512 MiB as int8 (about 0.4 GiB), not as float32
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_LAYOUT": "auto"}
    assert exact.layout_for(1_000_000, 384) == "int8"
    assert exact.row_bytes(384, "int8") * 1_000_000 <= 0.5 * 2**30


@pytest.mark.django_db
def test_a_search_in_an_int8_cache_equals_the_sql_scan(settings):
    """Through find_similar, the function the pages and the API call: the same rows and
    scores as the SQL scan, exactly min(limit, n) of them, both orders."""
    from datasets.models import Asset
    from similarity.embedding import readiness
    from similarity.search import find_similar

    s = Scope()
    s.add(400)
    readiness.refresh(s.scope)
    query = Asset.objects.filter(dataset=s.dataset).order_by("pk").first()
    answers = {}
    for layout, budget in (("int8", 512), ("sql", 0)):
        settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_MB": budget,
                               "EXACT_CACHE_LAYOUT": "int8" if layout == "int8" else "auto"}
        for order in ("most", "least"):
            result = find_similar(query, order=order, limit=100)
            answers[layout, order] = [(m.asset.pk, m.similarity) for m in result.matches]
            assert len(result.matches) == 100 and result.exact
        if layout == "int8":
            assert [key for key in exact._cache if key[2] == "int8"], "no int8 cache was used"
    for order in ("most", "least"):
        assert [a for a, _ in answers["int8", order]] == [a for a, _ in answers["sql", order]]
        np.testing.assert_allclose([s for _, s in answers["int8", order]],
                                   [s for _, s in answers["sql", order]], atol=1e-5)
