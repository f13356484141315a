"""Text search: query latency, and what the text model costs the worker.

(1) Embedding throughput, in one run: per image, the worker's work with DINOv2 alone
    (decode a 3 MP JPEG, preprocess, forward) against DINOv2 and the text model's image
    tower fed from the same decode, in img/s and their ratio; fp32 and int8; for SigLIP 2
    base at 256 px with 32-px patches (the suggested google/siglip2-base-patch32-256) and
    with 16-px patches (google/siglip2-base-patch16-256, the next larger).
(2) A text query, warm, on a project of ``--rows`` images: tokenise + text tower + search,
    through ``search_text`` (every query a new description, so each one is embedded),
    p50 and p95.

Architectures with random weights, written with ``save_pretrained`` and loaded through
the production ``from_pretrained`` path (the same cost as the real weights; nothing is
downloaded). The tokenizer is the tests' word-level one: SigLIP 2's Gemma tokenizer is a
fast (Rust) tokenizer too, whose cost on a 64-token description is well under a
millisecond, but it is not measured here.

    python bench/text.py [--rows 10000] [--queries 40] [--images 24] [--batch 8]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as manage.py sets it (see there)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import bench_project, django_for_bench, machine

WORDS = ("red green blue black white grey dark light cracked scratched broken dented clean "
         "casing part metal plastic screw bolt car tree house road label small large round "
         "square stripe dots pattern").split()


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def throughput(args, dinov2_dir: Path, siglip_dirs: dict[str, Path]) -> None:
    from similarity.vectors.embedder import Dinov2Embedder
    from similarity.vectors.images import load_rgb
    from similarity.vectors.preprocess import DRAFT_SIZE, preprocess
    from similarity.vectors.text_model import SiglipImageTower

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from embed import photo_like_jpeg

    blobs = [photo_like_jpeg((2048, 1536), seed) for seed in range(4)]
    n = args.images
    print(f"(1) Worker throughput per image (3 MP JPEGs, batch {args.batch}, {n} images; "
          "decode once, each model's own preprocessing and forward)")
    print(f"{'precision':>9} {'text model':>22} {'DINOv2 alone':>13} {'both':>8} {'ratio':>6}"
          f"  {'text tower alone':>16}")
    for precision in ("fp32", "int8"):
        dinov2 = Dinov2Embedder.load(str(dinov2_dir), "main", "cpu", "bench", precision=precision)
        dinov2.batch_size = args.batch

        def run(towers: list) -> float:
            started = time.perf_counter()
            for start in range(0, n, args.batch):
                count = min(args.batch, n - start)
                inputs: list[list[np.ndarray]] = [[] for _ in towers]
                for i in range(start, start + count):
                    draft = max((t[1] for t in towers), default=DRAFT_SIZE)
                    rgb = load_rgb(io.BytesIO(blobs[i % len(blobs)]), draft=draft)
                    for slot, (prepare, _draft, _model) in enumerate(towers):
                        inputs[slot].append(prepare(rgb))
                for slot, (_prepare, _draft, model) in enumerate(towers):
                    model.embed(np.stack(inputs[slot]))
            return n / (time.perf_counter() - started)

        alone = [(preprocess, DRAFT_SIZE, dinov2)]
        run(alone[:1])  # warm-up
        for label, folder in siglip_dirs.items():
            tower = SiglipImageTower.load(str(folder), "main", "bench", precision)
            tower.batch_size = args.batch
            feed = (tower.prepare, (tower.prepare.width, tower.prepare.height), tower)
            run([feed])  # warm-up
            # best of two rounds, alternated, so a passing disturbance hits neither alone
            rounds = [(run(alone), run([*alone, feed]), run([feed])) for _ in range(2)]
            base, both, text_alone = (max(r[i] for r in rounds) for i in range(3))
            print(f"{precision:>9} {label:>22} {base:10.2f}/s {both:6.2f}/s {both / base:6.2f}"
                  f"  {text_alone:13.2f}/s   ({load_average()})")
            del tower
        del dinov2


def query_latency(args, folder: Path) -> None:
    from django.conf import settings

    from similarity.conf import similarity_settings
    from similarity.embedding import readiness
    from similarity.search.text import search_text
    from similarity.testing import clustered_unit_vectors, load_embeddings
    from similarity.vectors import model_keys
    from similarity.vectors.text_model import get_text_tower

    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(folder),
                           "QUERY_EMBEDDING": "web", "PRECISION": args.query_precision}
    similarity_settings.reload()
    from datasets.models import Asset

    user, project, dataset = bench_project("bench text", "bench-text", args.rows)
    ids = np.array(sorted(Asset.objects.filter(dataset=dataset).values_list("pk", flat=True)))
    key = model_keys.text_model_key()
    from similarity.models import TextQuery

    TextQuery.objects.filter(model_key=key).delete()  # an earlier run's descriptions
    load_embeddings(ids, np.full(len(ids), project.pk),
                    clustered_unit_vectors(len(ids), 768, seed=2), key)
    state = readiness.text_readiness(readiness.get_readiness(str(project.pk)))
    tower = get_text_tower()
    rng = np.random.default_rng(0)

    def description() -> str:
        return " ".join(rng.choice(WORDS, size=int(rng.integers(2, 7))))

    for _ in range(3):  # warm: the tower loaded, the project's vectors cached
        search_text(str(project.pk), description(), state=state, user=user)
    times = []
    for _ in range(args.queries):
        text = description() + f" {len(times)}"  # never seen before: embedded every time
        started = time.perf_counter()
        result = search_text(str(project.pk), text, state=state, user=user)
        times.append((time.perf_counter() - started) * 1000)
        assert len(result.matches) == 100, len(result.matches)
    tower_times = []
    for _ in range(args.queries):
        started = time.perf_counter()
        tower.embed_texts([description()])
        tower_times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"\n(2) Text query, warm, {args.rows:,} images of 768 dims, SigLIP 2 base text tower "
          f"({args.query_precision}), {args.queries} new descriptions: p50 "
          f"{statistics.median(times):.1f} ms, p95 {p95:.1f} ms (text tower alone p50 "
          f"{statistics.median(tower_times):.1f} ms) ({load_average()})")
    project.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--query-precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()

    from similarity.testing import SMALL, make_dinov2_checkpoint, make_siglip_checkpoint, siglip2_base

    work = Path(tempfile.mkdtemp(prefix="bench-text-"))
    dinov2_dir = make_dinov2_checkpoint(work / "dinov2-small-arch", size=SMALL)
    siglip_dirs = {"B/32 256 px (suggested)": make_siglip_checkpoint(
        work / "siglip2-b32-256-arch", size=siglip2_base(32))}
    if not args.skip_throughput:
        siglip_dirs["B/16 256 px"] = make_siglip_checkpoint(work / "siglip2-b16-256-arch",
                                                            size=siglip2_base(16))
    django_for_bench("assetsite_bench_text", SIMILARITY_MODEL=str(dinov2_dir))
    print(f"Machine: {machine()}\n")
    if not args.skip_throughput:
        throughput(args, dinov2_dir, siglip_dirs)
    query_latency(args, siglip_dirs["B/32 256 px (suggested)"])


if __name__ == "__main__":
    main()
