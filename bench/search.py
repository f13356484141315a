"""Similarity search latency, row counts and recall, through the app's own tables and code.

Loads N unit vectors (384 dims, a mixture of 1,000 Gaussian clusters on the sphere) into
the embedded PostgreSQL as finished embedding rows of real asset rows, spread over
projects holding 0.2%, 1% and 10% of the rows (the rest in filler projects of under
20,000 rows each), or one project holding them all (--single). For each measured project
and order it runs ``similarity.search.find_similar`` (the function the pages and API
call) and prints p50/p95 latency, rows returned, recall@100 against NumPy brute force,
and the NumPy brute-force time beside it as the floor.

    python bench/search.py --rows 100000
    python bench/search.py --rows 100000 --single
    python bench/search.py --rows 1000000
    python bench/search.py --rows 1000000 --single --exact-cache-mb 2048 --keep
    python bench/search.py --rows 1000000 --single --reuse --ef-search 200,400,800
    python bench/search.py --rows 400000 --single --no-index --exact-most --layout int8,float32

``--layout`` measures each cache layout in turn (``EXACT_CACHE_LAYOUT``: auto, float32,
int8); ``--exact-most`` answers most similar exactly too (no HNSW); ``--no-index`` skips
building the HNSW index. Each case ends with one JSON line (rows, scope, order, layout,
path, p50_ms, p95_ms, recall, rows_returned, floor_ms, cache_bytes, first_ms, load).

``--keep`` leaves the bench database in place and ``--reuse`` measures it again without
loading or indexing (the vectors are regenerated from the same seed): tuning
``hnsw.ef_search`` at a million rows then costs minutes instead of a rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, insert_assets, machine

DIMS = 384
SHARES = (0.002, 0.01, 0.10)
FILLER_PROJECT_ROWS = 19_000


def load(rows: int, single: bool, seed: int):
    from django.db import connection

    from datasets.models import Dataset, Project
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors.model_keys import current_model_key

    sizes = [rows] if single else [int(rows * share) for share in SHARES]
    rest = rows - sum(sizes)
    while rest > 0:
        sizes.append(min(FILLER_PROJECT_ROWS, rest))
        rest -= sizes[-1]
    vectors = clustered_unit_vectors(rows, DIMS, clusters=1000, seed=seed)
    key = current_model_key()
    measured, offset = [], 0
    started = time.perf_counter()
    for number, size in enumerate(sizes):
        project = Project.objects.create(name=f"bench {number} ({size} rows)")
        dataset = Dataset.objects.create(project=project, name="d")
        ids = np.array(insert_assets(dataset.pk, size))
        block = vectors[offset:offset + size]
        offset += size
        load_embeddings(ids, np.full(size, project.pk), block, key)
        if number < (1 if single else len(SHARES)):
            measured.append((project, ids, block))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE similarity_embedding")
        cursor.execute("VACUUM ANALYZE datasets_asset")
    print(f"Loaded {rows:,} rows in {len(sizes)} projects in {time.perf_counter() - started:.0f} s")
    return measured, key


def reload(rows: int, single: bool, seed: int):
    """The projects a ``--keep`` run left, with their vectors regenerated from the seed
    (assets were inserted in order, so ascending ids match the generated rows)."""
    from datasets.models import Asset, Project
    from similarity.testing import clustered_unit_vectors
    from similarity.vectors.model_keys import current_model_key

    vectors = clustered_unit_vectors(rows, DIMS, clusters=1000, seed=seed)
    projects = list(Project.objects.order_by("pk"))
    measured, offset = [], 0
    for project in projects[: 1 if single else len(SHARES)]:
        ids = np.array(Asset.objects.filter(dataset__project=project).order_by("pk")
                       .values_list("pk", flat=True))
        measured.append((project, ids, vectors[offset:offset + len(ids)]))
        offset += len(ids)
    if not measured or offset == 0:
        raise SystemExit("Nothing to reuse: run once with --keep first.")
    print(f"Reusing {offset:,} rows of {len(measured)} measured projects")
    return measured, current_model_key()


def brute_force(stored: np.ndarray, q: np.ndarray, order: str, k: int = 100):
    started = time.perf_counter()
    similarity = stored @ q
    if order == "least":
        similarity = -similarity
    top = np.argpartition(-similarity, min(k, len(similarity) - 1))[:k]
    top = top[np.argsort(-similarity[top], kind="stable")]
    return top, (time.perf_counter() - started) * 1000


def measure(project, ids, block, order: str, queries: int, rng) -> dict:
    from datasets.models import Asset
    from similarity.search import find_similar

    # What the database holds (halfvec), normalised as cosine does.
    stored = block.astype(np.float16).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    picks = rng.choice(len(ids), size=min(queries, len(ids)), replace=False)
    latencies, floors, recalls, counts, exact = [], [], [], [], set()
    assets = Asset.objects.in_bulk([int(ids[i]) for i in picks])
    started = time.perf_counter()
    find_similar(assets[int(ids[picks[0]])], order=order)  # first query loads the caches
    cold = (time.perf_counter() - started) * 1000
    for index in picks:
        asset = assets[int(ids[index])]
        started = time.perf_counter()
        result = find_similar(asset, order=order, limit=100)
        latencies.append((time.perf_counter() - started) * 1000)
        truth, floor = brute_force(stored, stored[index], order)
        floors.append(floor)
        got = {m.asset.pk for m in result.matches}
        recalls.append(len(got & set(ids[truth].tolist())) / len(truth))
        counts.append(len(result.matches))
        exact.add(result.exact)
    from similarity.vectors import exact as exact_cache

    held = [m for key, m in exact_cache._cache.items() if key[0] == str(project.pk)]
    return {
        "layout": held[0].layout if held else "sql",
        "cache_bytes": sum(m.nbytes for m in held),
        "p50": statistics.median(latencies),
        "p95": float(np.percentile(latencies, 95)),
        "rows": (min(counts), max(counts)),
        "recall": float(np.mean(recalls)),
        "recall_min": float(np.min(recalls)),
        "floor": statistics.median(floors),
        "cold": cold,
        "path": "exact" if exact == {True} else ("hnsw" if exact == {False} else "mixed"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--single", action="store_true", help="one project holds every row")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-cache-mb", type=int, default=None,
                        help="override SIMILARITY['EXACT_CACHE_MB'] (1M x 384 needs ~1,500)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true",
                        help="measure a database kept by --keep (same --rows/--single/--seed)")
    parser.add_argument("--ef-search", default=None,
                        help="comma-separated hnsw.ef_search values to measure (most similar)")
    parser.add_argument("--orders", default="most,least")
    parser.add_argument("--layout", default="auto",
                        help="comma-separated EXACT_CACHE_LAYOUT values to measure in turn")
    parser.add_argument("--exact-most", action="store_true",
                        help="most similar exactly too (EXACT_SEARCH_MAX_ROWS above --rows)")
    parser.add_argument("--no-index", action="store_true", help="do not build the HNSW index")
    parser.add_argument("--ef-construction", type=int, default=None,
                        help="override HNSW_EF_CONSTRUCTION; with --reuse, rebuilds the index")
    args = parser.parse_args()

    database = f"assetsite_bench_search_{args.rows}{'_single' if args.single else ''}"
    if not args.reuse:
        _drop_database(database, recreate=True)
    django_for_bench(database)
    from django.conf import settings

    from similarity.conf import similarity_settings
    from similarity.vectors import hnsw

    if args.exact_cache_mb is not None:
        settings.SIMILARITY["EXACT_CACHE_MB"] = args.exact_cache_mb
        similarity_settings.reload()

    if args.ef_construction is not None:
        settings.SIMILARITY["HNSW_EF_CONSTRUCTION"] = args.ef_construction
        similarity_settings.reload()
    if args.exact_most:
        settings.SIMILARITY["EXACT_SEARCH_MAX_ROWS"] = args.rows + 1
        similarity_settings.reload()
    print(f"Machine: {machine()}")
    measured, key = (reload if args.reuse else load)(args.rows, args.single, args.seed)
    for project, ids, _ in [] if args.no_index else measured:
        started = time.perf_counter()
        if args.reuse and args.ef_construction is not None:
            hnsw.drop_other_indexes(project.pk)
        if hnsw.ensure_project_index(project.pk, key):
            print(f"HNSW index for {len(ids):,} rows (m {similarity_settings.HNSW_M}, "
                  f"ef_construction {similarity_settings.HNSW_EF_CONSTRUCTION}) ready in "
                  f"{time.perf_counter() - started:.0f} s")
    print(f"exact scan up to {similarity_settings.EXACT_SEARCH_MAX_ROWS:,} rows; "
          f"hnsw.ef_search={similarity_settings.HNSW_EF_SEARCH}; {args.queries} queries each\n")
    print(f"{'project rows':>12} {'share':>6} {'order':>5} {'path':>5} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'rows':>7} {'recall@100':>10} {'min':>5} {'numpy ms':>8} {'first ms':>8}")
    rng = np.random.default_rng(args.seed)
    ef_values = [int(v) for v in args.ef_search.split(",")] if args.ef_search else [None]
    from similarity.vectors import exact as exact_cache

    cases = [(layout, project, ids, block) for layout in args.layout.split(",")
             for project, ids, block in measured]
    for layout, project, ids, block in cases:
        settings.SIMILARITY["EXACT_CACHE_LAYOUT"] = layout
        similarity_settings.reload()
        exact_cache.clear()  # each layout's first query loads its own copy
        for order in args.orders.split(","):
            for ef in ef_values if order == "most" else [None]:
                if ef is not None:
                    settings.SIMILARITY["HNSW_EF_SEARCH"] = ef
                    similarity_settings.reload()
                    print(f"hnsw.ef_search={ef}")
                r = measure(project, ids, block, order, args.queries, rng)
                rows = (f"{r['rows'][0]}" if r["rows"][0] == r["rows"][1]
                        else f"{r['rows'][0]}-{r['rows'][1]}")
                path = r["path"] if r["path"] != "exact" else f"{r['layout']}"
                print(f"{len(ids):>12,} {len(ids) / args.rows:>6.1%} {order:>5} {path:>7} "
                      f"{r['p50']:7.1f} {r['p95']:7.1f} {rows:>7} {r['recall']:10.3f} "
                      f"{r['recall_min']:5.2f} {r['floor']:8.2f} {r['cold']:8.1f}", flush=True)
                print(json.dumps({
                    "rows": args.rows, "scope": len(ids), "order": order, "layout": layout,
                    "path": path, "p50_ms": round(r["p50"], 2), "p95_ms": round(r["p95"], 2),
                    "recall": round(r["recall"], 4), "rows_returned": list(r["rows"]),
                    "floor_ms": round(r["floor"], 2), "cache_bytes": r["cache_bytes"],
                    "first_ms": round(r["cold"], 1), "ef_search": ef,
                    "load": [round(v, 2) for v in os.getloadavg()]}), flush=True)
    if not args.keep:
        _drop_database(database, keep_connection_of_django=True)


def _drop_database(name: str, keep_connection_of_django: bool = False,
                   recreate: bool = False) -> None:
    """Drop (and optionally recreate empty) the bench database. The server is joined
    through ``ensure_embedded_server`` exactly as Django's connections join it, so this
    process registers as one user of the server once (joining twice used to drop our
    registration and let the reaper stop the server under the bench)."""
    import os

    import psycopg

    from assetsite.database import ensure_embedded_server, pgdata_path

    if keep_connection_of_django:
        from django.db import connections

        connections.close_all()
    os.environ["ASSETSITE_DB_NAME"] = name
    address = {"PGDATA": str(pgdata_path(Path(__file__).resolve().parent.parent))}
    ensure_embedded_server(address)
    with psycopg.connect(host=address["HOST"], port=address["PORT"], user="postgres",
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if recreate:
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
