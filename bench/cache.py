"""The first search after an upload: incremental cache refresh vs a warm query.

Loads one project of N rows (384 dims, clustered), warms the exact-search cache, then
repeatedly "uploads" one image (an asset row plus its finished embedding row, as the
worker leaves it; the readiness version moves; the library's rows are dated an hour
back) and times the first least-similar search
after it (which brings the cache up to date) against the next one (warm). Also prints
what a full reload of the project costs, the price every upload used to pay.

    python bench/cache.py [--rows 100000] [--uploads 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, insert_assets, machine

DIMS = 384


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--uploads", type=int, default=15)
    args = parser.parse_args()

    from search import _drop_database

    database = f"assetsite_bench_cache_{args.rows}"
    _drop_database(database, recreate=True)
    django_for_bench(database)
    from datasets.models import Asset, Dataset, Project
    from similarity.search import find_similar
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors import exact
    from similarity.vectors.model_keys import current_model_key

    print(f"Machine: {machine()}")
    key = current_model_key()
    project = Project.objects.create(name="cache bench")
    dataset = Dataset.objects.create(project=project, name="d")
    vectors = clustered_unit_vectors(args.rows + args.uploads, DIMS, seed=0)
    ids = insert_assets(dataset.pk, args.rows)
    load_embeddings(ids, [project.pk] * len(ids), vectors[: args.rows], key)
    # A library embedded an hour ago (what an upload meets in practice): a refresh reads
    # only rows changed since the newest cached change, less exact.RECENT_MARGIN.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE similarity_embedding SET updated = updated - interval '1 hour'")
        cursor.execute("VACUUM ANALYZE similarity_embedding")
    query = Asset.objects.get(pk=ids[len(ids) // 2])

    def search() -> None:
        result = find_similar(query, order="least", limit=100)
        assert len(result.matches) == 100 and result.exact

    reloads = []
    for _ in range(3):
        exact.clear()
        reloads.append(timed(search))
    warm_alone = [timed(search) for _ in range(20)]
    first, warm, paths = [], [], set()
    for number in range(args.uploads):
        new = insert_assets(dataset.pk, 1)
        load_embeddings(new, [project.pk], vectors[args.rows + number: args.rows + number + 1], key)
        first.append(timed(search))
        paths.add(exact.last_path.value)
        warm.append(timed(search))
    extra = [f - w for f, w in zip(first, warm, strict=True)]
    print(f"{args.rows:,} rows, one project, least similar (exact), {args.uploads} uploads of one image")
    print(f"  warm query p50          {statistics.median(warm_alone):7.1f} ms")
    print(f"  full reload (old way)   {statistics.median(reloads):7.1f} ms (first query after clear)")
    print(f"  first after an upload   {statistics.median(first):7.1f} ms p50, "
          f"{max(first):.1f} max (path: {', '.join(sorted(paths))})")
    print(f"  warm after it           {statistics.median(warm):7.1f} ms p50")
    print(f"  extra cost of the first {statistics.median(extra):7.1f} ms p50, "
          f"{float(np.percentile(extra, 90)):.1f} p90 (target <= 50)")
    _drop_database(database, keep_connection_of_django=True)


if __name__ == "__main__":
    main()
