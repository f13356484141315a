"""Insight stage figures: neighbour-graph build, incremental updates, peak memory, recall.

For each size, loads N unit vectors (384 dims, clustered like bench/search.py) as finished
embedding rows of one project, then through ``similarity.insight.analyse_project`` (what
the worker runs) measures: the full build; 100 new images added (incremental); 100 images
deleted (incremental); the process's peak resident memory during the build; and recall@10
of the stored lists against NumPy brute force over a sample of rows (1.0: exact).

    python bench/insight.py --rows 10000 100000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, insert_assets, machine

DIMS = 384
NEW = 100
SAMPLE = 1000


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """Samples the resident set every 20 ms (torch's allocations included)."""

    def __enter__(self) -> PeakMemory:
        self.base = self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def recall(project_id: str, key: str, rng: np.random.Generator) -> float:
    from similarity.embedding import readiness
    from similarity.insight.neighbours import K
    from similarity.models import Neighbours
    from similarity.vectors import exact

    state = readiness.get_readiness(project_id)
    matrix = exact.get_matrix(project_id, key, DIMS, ("bench", state.updated))
    ids, vectors = matrix.ids, matrix.vectors
    sample = rng.choice(len(ids), size=min(SAMPLE, len(ids)), replace=False)
    stored = dict(Neighbours.objects.filter(embedding_id__in=ids[sample].tolist())
                  .values_list("embedding_id", "neighbour_ids"))
    hits = total = 0
    for position in sample:
        sims = vectors @ vectors[position]
        sims[position] = -np.inf
        truth = set(ids[np.argpartition(-sims, K)[:K]].tolist())
        hits += len(truth & set(stored.get(int(ids[position]), [])))
        total += K
    return hits / total


def run(rows: int, seed: int) -> dict:
    from datasets.models import Asset, Dataset, Project
    from similarity.embedding import readiness
    from similarity.insight import stage
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors.model_keys import current_model_key

    key = current_model_key()
    vectors = clustered_unit_vectors(rows + NEW, DIMS, clusters=1000, seed=seed)
    project = Project.objects.create(name=f"insight bench {rows}")
    dataset = Dataset.objects.create(project=project, name="d")
    scope = str(project.pk)
    ids = np.array(insert_assets(dataset.pk, rows))
    load_embeddings(ids, np.full(rows, project.pk), vectors[:rows], key)

    with PeakMemory() as memory:
        started = time.perf_counter()
        built = stage.analyse_project(scope, hash_files=False)
        build = time.perf_counter() - started
    assert built["full"] and built["rows"] == rows, built

    new_ids = np.array(insert_assets(dataset.pk, NEW))
    load_embeddings(new_ids, np.full(NEW, project.pk), vectors[rows:], key)
    started = time.perf_counter()
    added = stage.analyse_project(scope, hash_files=False)
    add = time.perf_counter() - started
    assert not added["full"], added

    victims = ids[:NEW].tolist()
    Asset.objects.filter(pk__in=victims).delete()
    readiness.refresh(scope, changed=True)
    started = time.perf_counter()
    deleted = stage.analyse_project(scope, hash_files=False)
    delete = time.perf_counter() - started
    from similarity.insight import map as project_map

    started = time.perf_counter()
    body = json.dumps(project_map.payload(scope), separators=(",", ":")).encode()
    payload_s = time.perf_counter() - started
    return {
        "payload_bytes": len(body), "payload_gzip": len(gzip.compress(body)),
        "payload_s": payload_s, "scope": scope,
        "rows": rows, "build_s": build, "peak_mib": memory.peak - memory.base,
        "add_s": add, "add_recomputed": added["recomputed"], "add_written": added["written"],
        "delete_s": delete, "delete_recomputed": deleted["recomputed"],
        "recall": recall(scope, key, np.random.default_rng(seed)),
    }


def paint(project_pk: int) -> dict:
    """First paint of the map page in Debian's Chromium, and a zoom and a pan frame.

    The page's HTML and data come from the site's own views (Django's test client, as a
    project member); Playwright serves them and the static files to Chromium, so what is
    timed is the browser: fetch, JSON parse, colouring and the first canvas frame.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.staticfiles import finders
    from django.test import Client
    from django.urls import reverse

    from datasets.models import ProjectMembership
    from tests.chromium import chromium_page

    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
    ProjectMembership.objects.create(project_id=project_pk, user=user, role="viewer")
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    page_path = reverse("similarity:insight-map", args=[project_pk])
    data_path = reverse("similarity:insight-map-data", args=[project_pk])
    html = client.get(page_path).content
    data = client.get(data_path).content
    assert b"data-map" in html and data.startswith(b"{"), html[:500]

    def serve(route) -> None:
        path = route.request.url.split("bench.local", 1)[1].split("?")[0]
        if path == page_path:
            route.fulfill(body=html, content_type="text/html")
        elif path == data_path:
            route.fulfill(body=data, content_type="application/json")
        elif path.startswith("/static/") and finders.find(path[len("/static/"):]):
            route.fulfill(path=finders.find(path[len("/static/"):]))
        else:
            route.fulfill(status=404, body=b"")

    with chromium_page("http://bench.local") as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.route("**/*", serve)
        page.goto(page_path)
        page.wait_for_selector("[data-map][data-first-paint]", timeout=120_000)
        stats = page.evaluate("() => Object.assign({}, window.similarityMap)")
        page.get_by_role("button", name="Zoom in").click()
        page.wait_for_function("window.similarityMap.frames > 1")
        zoom_ms = page.evaluate("window.similarityMap.lastFrameMs")
        box = page.get_by_test_id("map-canvas").bounding_box()
        page.mouse.move(box["x"] + 200, box["y"] + 200)
        page.mouse.down()
        frames = []
        for step in range(20):
            page.mouse.move(box["x"] + 200 + step * 10, box["y"] + 200 + step * 5)
            page.wait_for_timeout(20)
            frames.append(page.evaluate("window.similarityMap.lastFrameMs"))
        page.mouse.up()
    return {"bytes": len(data), "first_paint_ms": stats["firstPaintMs"],
            "fetch_ms": stats["fetchMs"], "zoom_frame_ms": zoom_ms,
            "pan_frame_ms": float(np.median(frames))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database", default="bench_insight")
    parser.add_argument("--paint", action="store_true",
                        help="also time the map's first paint in Chromium (largest size)")
    args = parser.parse_args()
    django_for_bench(args.database)
    print(f"# {machine()}; load average before: {os.getloadavg()}")
    print("| images | full build | peak memory (above start) | +100 new | lists rewritten "
          "| -100 deleted | lists recomputed | recall@10 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        r = run(rows, args.seed)
        print(f"| {r['rows']:,} | {r['build_s']:.1f} s | {r['peak_mib']:.0f} MiB | "
              f"{r['add_s']:.2f} s | {r['add_written']:,} | {r['delete_s']:.2f} s | "
              f"{r['delete_recomputed']:,} | {r['recall']:.3f} |", flush=True)
        last = r
        print(f"#   map payload: {r['payload_bytes'] / 2**20:.2f} MiB JSON "
              f"({r['payload_gzip'] / 2**20:.2f} MiB gzipped), built in {r['payload_s']:.2f} s; "
              f"load average after: {os.getloadavg()}", flush=True)
    if args.paint:
        p = paint(int(last["scope"]))
        print(f"#   map in Chromium at {last['rows']:,} points: first paint "
              f"{p['first_paint_ms']:.0f} ms after navigation ({p['bytes'] / 2**20:.2f} MiB "
              f"fetched in {p['fetch_ms']:.0f} ms); a zoom frame {p['zoom_frame_ms']:.1f} ms, "
              f"pan frames {p['pan_frame_ms']:.1f} ms (median); load average "
              f"{os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
