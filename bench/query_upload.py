"""Search with an outside image: warm latency from upload to results, p50/p95.

One request cycle is what a browser does after a drop: POST the JPEG to the project's
image-search page (checks, decode, preview, embed, store the vector), follow the 303 and
render the results page (rank + 100 tiles). ``--api`` times POST /api/projects/{id}/similar/
instead. Requests go through Django's test client in this process (the whole view stack,
no HTTP server). Two embedding modes:

- ``web``: this process embeds with its own loaded model;
- ``worker``: a real ``manage.py qcluster`` (started here, stopped at the end) embeds it
  with its loaded model while this process polls for the vector.

Uses dinov2-small's architecture with random weights (same cost as the real weights;
nothing is downloaded), 1 MP and 12 MP photo-like JPEGs, and a project of ``--rows``
embedded images.

    python bench/query_upload.py [--runs 20] [--rows 5000] [--modes web,worker] [--api]
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

DATABASE = "assetsite_bench_query"
SIZES = {"1 MP": (1280, 800), "12 MP": (4000, 3000)}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def one_search(client, project_id: str, blob: bytes, api: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one search, upload to results."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("query.jpg", blob, content_type="image/jpeg")
    started, cpu = time.perf_counter(), time.process_time()
    if api:
        response = client.post(f"/api/projects/{project_id}/similar/", {"image": upload})
        assert response.status_code == 200, response.content[:500]
        assert len(response.json()["results"]) == 100
    else:
        response = client.post(f"/similarity/projects/{project_id}/image-search/",
                               {"image": upload})
        assert response.status_code == 303, response.content[:500]
        page = client.get(response["Location"])
        assert page.status_code == 200 and len(page.context["matches"]) == 100
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed searches per size")
    parser.add_argument("--rows", type=int, default=5000, help="embedded images in the project")
    parser.add_argument("--modes", default="web,worker")
    parser.add_argument("--api", action="store_true", help="time the API instead of the pages")
    args = parser.parse_args()

    from similarity.testing import SMALL, make_dinov2_checkpoint

    model_dir = Path(tempfile.gettempdir()) / "bench-dinov2-small-arch"
    if not (model_dir / "model.safetensors").exists():
        make_dinov2_checkpoint(model_dir, size=SMALL)
    django_for_bench(DATABASE, SIMILARITY_MODEL=str(model_dir))
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    from assetsite.processes import stop_process
    from similarity.conf import similarity_settings
    from similarity.models import QueryImage
    from similarity.vectors import embedder

    setup_test_environment()
    QueryImage.objects.all().delete()
    user, project, _dataset = bench_project("bench query", "bench-query", args.rows)
    client = Client()
    client.force_login(user)
    blobs = {label: [photo_like_jpeg(size, seed) for seed in range(3)]
             for label, size in SIZES.items()}

    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} (shared machine)")
    print(f"Model: dinov2-small architecture, random weights; project of {args.rows:,} "
          f"embedded images; {'API' if args.api else 'POST + 303 + results page'}; "
          f"{args.runs} warm runs per size\n")
    # CPU seconds of this process (all its threads) do not grow with other processes'
    # load as wall time does: on an idle 2-core machine the wall time of a web-mode
    # search lies between cpu/2 (both cores busy) and cpu. In worker mode the model runs
    # in the worker, so this process's CPU is only the web side.
    print(f"{'mode':>7} {'JPEG':>6} {'file MB':>8} {'p50 s':>7} {'p95 s':>7} {'max s':>7} "
          f"{'cpu p50 s':>10}")
    for mode in args.modes.split(","):
        settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": mode,
                               "QUERY_TIMEOUT": 120}
        similarity_settings.reload()
        worker = start_worker(DATABASE, model_dir, "query") if mode == "worker" else None
        try:
            print(f"    ({mode}: load average {os.getloadavg()[0]:.1f})", flush=True)
            for _ in range(2):  # warm-up: model loads (here or in the worker), caches fill
                one_search(client, str(project.pk), blobs["1 MP"][0], args.api)
            for label, files in blobs.items():
                runs = [one_search(client, str(project.pk), files[i % len(files)], args.api)
                        for i in range(args.runs)]
                times, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
                megabytes = np.mean([len(b) for b in files]) / 2**20
                print(f"{mode:>7} {label:>6} {megabytes:8.2f} {percentile(times, 50):7.3f} "
                      f"{percentile(times, 95):7.3f} {max(times):7.3f} "
                      f"{percentile(cpus, 50):10.3f}", flush=True)
        finally:
            if worker is not None:
                stop_process(worker)
        if mode == "web":
            embedder.forget_loaded_models()
    project.delete()
    QueryImage.objects.all().delete()
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
