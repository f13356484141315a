"""Embedding throughput: the model alone vs the whole worker pipeline.

Prints images/s for (a) the forward pass alone on preprocessed tensors and (b) the whole
pipeline the worker runs (claim rows, read the file, decode, preprocess, forward, write)
at the same batch size, on JPEGs of 1, 3 and 12 megapixels, their ratio, and the
process's peak memory. Uses dinov2-small's architecture with random weights (same cost
as the real weights; nothing is downloaded).

    python bench/embed.py [--images 32] [--batch 8] [--precision int8]

With ``--precision int8`` the worker runs the dynamically quantized model, and the same
run also times the fp32 forward pass on the same batch, printing the int8/fp32 ratio.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, machine

SIZES = {"1 MP": (1280, 800), "3 MP": (2048, 1536), "12 MP": (4000, 3000)}


def photo_like_jpeg(size: tuple[int, int], seed: int) -> bytes:
    """Smooth shapes plus sensor-like noise, JPEG q=90: decodes like a real photo."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    small = Image.new("RGB", (size[0] // 8, size[1] // 8), tuple(rng.integers(0, 255, 3).tolist()))
    pen = ImageDraw.Draw(small)
    for _ in range(30):
        x, y = rng.integers(0, small.width), rng.integers(0, small.height)
        r = int(rng.integers(5, max(6, small.width // 4)))
        pen.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.integers(0, 255, 3).tolist()))
    image = small.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    pixels = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, (size[1], size[0], 3)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def forward_images_per_second(embedder, batch: np.ndarray, runs: int) -> float:
    """Images/s of the forward pass alone on preprocessed tensors (after one warm-up)."""
    embedder.embed(batch)
    started = time.perf_counter()
    for _ in range(runs):
        embedder.embed(batch)
    return runs * len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per size")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    args = parser.parse_args()

    from similarity.testing import SMALL, make_dinov2_checkpoint

    model_dir = make_dinov2_checkpoint(Path(tempfile.mkdtemp()) / "dinov2-small-arch", size=SMALL)
    django_for_bench("assetsite_bench_embed", SIMILARITY_MODEL=str(model_dir))
    from django.conf import settings
    from django.core.files.base import ContentFile

    settings.SIMILARITY["BATCH_SIZE"] = args.batch
    settings.SIMILARITY["PRECISION"] = args.precision
    from similarity.conf import similarity_settings

    similarity_settings.reload()
    from datasets.models import Asset, Dataset, Project
    from similarity import tasks
    from similarity.vectors.embedder import get_embedder

    embedder = get_embedder()
    print(f"Machine: {machine()}")
    print(f"Model: dinov2-small architecture ({embedder.dims} dims, {embedder.precision}), "
          f"batch {args.batch}, {args.images} images per size\n")

    batch = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    runs = max(2, args.images // args.batch)
    forward_rate = forward_images_per_second(embedder, batch, runs)
    print(f"(a) forward alone: {forward_rate:6.2f} images/s")
    if args.precision != "fp32":
        from similarity.vectors.embedder import Dinov2Embedder

        fp32 = Dinov2Embedder.load(str(model_dir), "main", "cpu", "fp32", precision="fp32")
        fp32_rate = forward_images_per_second(fp32, batch, runs)
        agreement = np.sum(fp32.embed(batch) * embedder.embed(batch), axis=1)
        del fp32
        print(f"    fp32 forward on the same batch: {fp32_rate:6.2f} images/s; "
              f"{args.precision}/fp32 = {forward_rate / fp32_rate:.2f}x; cosine to fp32 "
              f"mean {agreement.mean():.4f}, min {agreement.min():.4f}")
    print()

    Project.objects.filter(name__startswith="bench").delete()
    print(f"{'JPEG':>6} {'file MB':>8} {'pipeline img/s':>15} {'ratio':>6} {'decode+prep ms/img':>19}")
    for label, size in SIZES.items():
        project = Project.objects.create(name=f"bench {label}")
        dataset = Dataset.objects.create(project=project, name="d")
        blobs = [photo_like_jpeg(size, seed) for seed in range(4)]
        for i in range(args.images):
            asset = Asset(dataset=dataset, original_filename=f"{i}.jpg", kind="image",
                          content_type="image/jpeg", width=size[0], height=size[1])
            asset.file.save("x.jpg", ContentFile(blobs[i % len(blobs)]), save=True)
        # time decode + preprocess alone, for the record
        from similarity.vectors.preprocess import load_and_preprocess

        t = time.perf_counter()
        for blob in blobs:
            load_and_preprocess(io.BytesIO(blob))
        prep_ms = (time.perf_counter() - t) * 1000 / len(blobs)

        started = time.perf_counter()
        outcome = tasks.embed_project(project.pk, budget_seconds=None)
        elapsed = time.perf_counter() - started
        assert outcome["embedded"] == args.images, outcome
        rate = args.images / elapsed
        megabytes = np.mean([len(b) for b in blobs]) / 2**20
        print(f"{label:>6} {megabytes:8.2f} {rate:15.2f} {rate / forward_rate:6.2f} {prep_ms:19.1f}")
        project.delete()

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak memory (max RSS of this worker-like process): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
