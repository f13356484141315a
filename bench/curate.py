"""Curation figures: diverse picks, coverage and the leakage report at 100,000 images.

Loads one project with a "labelled" dataset of N unit vectors (384 dims, clustered like
bench/search.py) and an "incoming" dataset of M, as finished embedding rows, then times
through ``similarity.curate`` and ``similarity.insight.leakage`` (what the pages and the
API call):

- diverse: 1,000 picks among the N labelled images (k-center), cache warm and cold;
- coverage: the M incoming images ranked against the N labelled ones;
- leakage: after the insight stage's full build, 100 near-copies of labelled images are
  added to "incoming"; the refresh is the stage's incremental pass plus the report.

Each prints its time, the process's peak resident memory above the start of that step and
the load average; one JSON line per case at the end.

    python bench/curate.py --rows 100000 --incoming 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, insert_assets, machine
from insight import PeakMemory

DIMS = 384
NEW = 100


def timed(name: str, call, results: list, **extra):
    with PeakMemory() as memory:
        started = time.perf_counter()
        value = call()
        seconds = time.perf_counter() - started
    case = {"case": name, "seconds": round(seconds, 3),
            "peak_mib": round(memory.peak - memory.base), "load": round(os.getloadavg()[0], 2),
            **extra}
    results.append(case)
    print(f"| {name} | {seconds:.2f} s | {case['peak_mib']} MiB | {case['load']} |", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--incoming", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default="bench_curate")
    args = parser.parse_args()
    django_for_bench(args.database)
    from datasets.models import Dataset, Project
    from similarity import curate
    from similarity.curate import coverage as coverage_module
    from similarity.insight import leakage, stage
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors import exact
    from similarity.vectors.model_keys import current_model_key

    key = current_model_key()
    n, m = args.rows, args.incoming
    vectors = clustered_unit_vectors(n + m, DIMS, clusters=1000, seed=args.seed)
    project = Project.objects.create(name=f"curate bench {n}")
    labelled = Dataset.objects.create(project=project, name="labelled")
    incoming = Dataset.objects.create(project=project, name="incoming")
    scope = str(project.pk)
    ids = insert_assets(labelled.pk, n)
    load_embeddings(ids, [project.pk] * n, vectors[:n], key)
    more = insert_assets(incoming.pk, m)
    load_embeddings(more, [project.pk] * m, vectors[n:], key)
    print(f"# {machine()}; {n:,} labelled + {m:,} incoming images, {DIMS} dims; "
          f"load average before: {os.getloadavg()}")
    print("| step | time | peak memory (above the step's start) | load average |")
    print("|---|---:|---:|---:|")
    results: list[dict] = []
    exact.clear()
    timed(f"diverse {args.count:,} of {n:,} (cold: vectors loaded)", lambda: curate.pick_diverse(
        scope, args.count, group=str(labelled.pk)), results, rows=n, count=args.count)
    picks = timed(f"diverse {args.count:,} of {n:,} (warm)", lambda: curate.pick_diverse(
        scope, args.count, group=str(labelled.pk)), results, rows=n, count=args.count)
    assert len(picks.picks) == args.count
    coverage_module._answers.clear()
    ranked = timed(f"coverage of {m:,} against {n:,}", lambda: curate.rank_coverage(
        scope, str(incoming.pk), [str(labelled.pk)]), results, rows=n, candidates=m)
    assert len(ranked) == m
    timed(f"diverse {min(args.count, m):,} of the {m:,} uncovered", lambda: curate.diverse_uncovered(
        scope, str(incoming.pk), [str(labelled.pk)], min(args.count, m)), results)

    timed(f"insight full build ({n + m:,} images)", lambda: stage.analyse_project(
        scope, hash_files=False), results, rows=n + m)
    report = timed("leakage report", lambda: leakage.leakage(
        scope, str(labelled.pk), str(incoming.pk), 0.95), results)
    before = len(report.pairs)
    rng = np.random.default_rng(args.seed + 1)
    sources = rng.choice(n, NEW, replace=False)
    noise = rng.normal(0, 0.01, (NEW, DIMS)).astype(np.float32)
    copies = vectors[sources] + noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    new_ids = insert_assets(incoming.pk, NEW)
    load_embeddings(new_ids, [project.pk] * NEW, copies, key)
    started = time.perf_counter()
    timed(f"+{NEW} images: incremental pass", lambda: stage.analyse_project(
        scope, hash_files=False), results)
    after = timed(f"+{NEW} images: leakage report", lambda: leakage.leakage(
        scope, str(labelled.pk), str(incoming.pk), 0.95), results)
    refresh = time.perf_counter() - started
    print(f"#   leakage refresh after +{NEW}: {refresh:.2f} s in all; pairs {before:,} -> "
          f"{len(after.pairs):,} ({after.rescanned:,} full lists rescanned); "
          f"load average after: {os.getloadavg()}", flush=True)
    results.append({"case": "leakage refresh", "seconds": round(refresh, 3),
                    "pairs_before": before, "pairs_after": len(after.pairs)})
    for case in results:
        print(json.dumps(case))


if __name__ == "__main__":
    main()
