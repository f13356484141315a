"""Look closer: warm latency of a region query of a 12 MP JPEG and of a match overlay.

- **region query**: ``POST /api/projects/{id}/similar/`` with ``{"asset", "region"}``:
  the asset's 12 MP JPEG is decoded (DCT-scaled as far as the region allows), cropped,
  embedded, kept as a query image and ranked against the project (100 results).
- **match overlay**: ``GET /similarity/assets/{q}/match/{r}/?format=png``, computed fresh
  each run (kept maps are deleted first): the result's 12 MP JPEG decoded and seen whole
  by the model, its patch tokens scored against the query's stored vector, the PNG drawn.
  ``+ region`` adds the region's own forward (a region of the query, 12 MP too); ``kept``
  is the same request answered from the kept map.

Embedding modes, as ``QUERY_EMBEDDING`` says: ``web`` (this process's model) and
``worker`` (a real ``manage.py qcluster``, started here and stopped at the end, while
this process polls; ``worker-fast``: the same with the broker polled every 0.05 s
instead of the demo's 0.5 s, as a dedicated query cluster would run). dinov2-small's
architecture with random weights (same cost as the real weights; nothing is downloaded);
a project of ``--rows`` embedded images.

    python bench/look_closer.py [--runs 20] [--rows 5000]
                                [--modes web,worker,worker-fast]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import bench_project, django_for_bench, machine, start_worker
from embed import photo_like_jpeg

DATABASE = "assetsite_bench_look_closer"
SIZE = (4000, 3000)  # 12 MP


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed requests per figure")
    parser.add_argument("--rows", type=int, default=5000, help="embedded images in the project")
    parser.add_argument("--modes", default="web,worker,worker-fast",
                        help="worker-fast: the worker's broker poll at 0.05 s, as a "
                             "dedicated query cluster would run (ASSETSITE_Q_POLL)")
    args = parser.parse_args()

    from similarity.testing import SMALL, make_dinov2_checkpoint

    model_dir = Path(tempfile.gettempdir()) / "bench-dinov2-small-arch"
    if not (model_dir / "model.safetensors").exists():
        make_dinov2_checkpoint(model_dir, size=SMALL)
    django_for_bench(DATABASE, SIMILARITY_MODEL=str(model_dir))
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from assetsite.processes import stop_process
    from datasets.uploads import create_asset
    from similarity import tasks
    from similarity.conf import similarity_settings
    from similarity.embedding import readiness
    from similarity.http import SearchThrottle
    from similarity.models import MatchMap, QueryImage
    from similarity.vectors import embedder
    from tests.factories import upload

    SearchThrottle.THROTTLE_RATES = {"similarity_search": "1000000/min"}  # timing, not limiting
    setup_test_environment()
    QueryImage.objects.all().delete()
    MatchMap.objects.all().delete()
    user, project, dataset = bench_project("bench look closer", "bench-look-closer", args.rows)
    photos = [create_asset(dataset, upload(f"photo{seed}.jpg", photo_like_jpeg(SIZE, seed)))
              for seed in range(4)]
    tasks.embed_project(str(project.pk))  # the four real photos (the rows are embedded)
    readiness.refresh(str(project.pk))
    query, results = photos[0], photos[1:]
    api = APIClient()
    api.force_authenticate(user)
    web = Client()
    web.force_login(user)
    regions = [[0.1 + 0.05 * (i % 8), 0.1 + 0.04 * (i % 5), 0.25, 0.25] for i in range(64)]

    def region_query(i: int) -> None:
        response = api.post(f"/api/projects/{project.pk}/similar/",
                            {"asset": query.pk, "region": regions[i % len(regions)]},
                            format="json")
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == 100

    def overlay(i: int, *, region: bool = False, kept: bool = False) -> None:
        if not kept:
            MatchMap.objects.all().delete()
        params = {"format": "png"}
        if region:
            params["region"] = ",".join(str(v) for v in regions[i % len(regions)])
        response = web.get(f"/similarity/assets/{query.pk}/match/{results[i % 3].pk}/", params)
        assert response.status_code == 200 and response["Content-Type"] == "image/png", \
            response.content[:300]

    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} (shared machine)")
    print(f"Model: dinov2-small architecture, random weights; project of {args.rows:,} "
          f"embedded images; 12 MP ({SIZE[0]}x{SIZE[1]}) JPEGs; regions 25% x 25% "
          f"(1000x750 px); {args.runs} warm runs per figure\n")
    print(f"{'mode':>7} {'request':<22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for mode in args.modes.split(","):
        settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_TIMEOUT": 120,
                               "QUERY_EMBEDDING": "web" if mode == "web" else "worker"}
        similarity_settings.reload()
        worker = None if mode == "web" else start_worker(
            DATABASE, model_dir, "look-closer",
            ASSETSITE_Q_POLL="0.05" if mode == "worker-fast" else "0.5")
        try:
            print(f"    ({mode}: load average {os.getloadavg()[0]:.1f})", flush=True)
            for i in range(2):  # warm-up: the model loads (here or in the worker)
                region_query(i)
                overlay(i)
            figures = {
                "region query (API)": lambda i: region_query(i),
                "match overlay": lambda i: overlay(i),
                "match overlay + region": lambda i: overlay(i, region=True),
                "match overlay, kept": lambda i: overlay(i, kept=True),
            }
            for label, run in figures.items():
                if label.endswith("kept"):
                    for i in range(3):  # each of the three pairs computed once, then kept
                        overlay(i, kept=True)
                times = [1000 * timed(lambda i=i, run=run: run(i)) for i in range(args.runs)]
                print(f"{mode:>7} {label:<22} {percentile(times, 50):8.1f} "
                      f"{percentile(times, 95):8.1f} {max(times):8.1f}", flush=True)
        finally:
            if worker is not None:
                stop_process(worker)
        if mode == "web":
            embedder.forget_loaded_models()
    project.delete()
    QueryImage.objects.all().delete()
    MatchMap.objects.all().delete()


if __name__ == "__main__":
    main()
