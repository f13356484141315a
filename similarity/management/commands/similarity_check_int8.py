"""Should this site switch PRECISION to int8? Measure it on the site's own images and model.

Loads the configured checkpoint twice on the CPU (fp32 and dynamic int8), embeds a random
sample of the site's image assets with both, and prints how far the int8 vectors are from
the fp32 ones (cosine), whether each image keeps its nearest neighbours inside the sample
(top-10 overlap), how much faster the int8 forward pass is, and a verdict. Nothing is
written: the index keeps serving whatever it serves.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from similarity.conf import similarity_settings
from similarity.host.files import image_file
from similarity.host.models import image_assets
from similarity.vectors.embedder import Dinov2Embedder
from similarity.vectors.model_keys import base_model_key
from similarity.vectors.preprocess import load_and_preprocess

#: int8 is called safe when both hold (the neighbours a user sees barely change).
MIN_OVERLAP = 0.9
MIN_MEAN_COSINE = 0.99


def neighbour_overlap(reference: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's k nearest rows (by cosine, itself excluded) that ``other``
    finds too. Both are (n, d) unit vectors of the same images in the same order."""
    n = len(reference)
    k = min(k, n - 1)
    if k <= 0:
        return 1.0

    def nearest(vectors: np.ndarray) -> np.ndarray:
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, k - 1, axis=1)[:, :k]

    a, b = nearest(reference), nearest(other)
    return float(np.mean([len(set(a[i]) & set(b[i])) / k for i in range(n)]))


def _timed_embed(embedder: Dinov2Embedder, pixels: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    embedder.embed(pixels[:batch])  # warm-up (first call allocates)
    started = time.perf_counter()
    parts = [embedder.embed(pixels[i:i + batch]) for i in range(0, len(pixels), batch)]
    return np.concatenate(parts), time.perf_counter() - started


class Command(BaseCommand):
    help = "Compare int8 and fp32 embeddings on a sample of this site's images (writes nothing)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sample", type=int, default=200, help="images to embed (default 200)")
        parser.add_argument("--batch", type=int, default=None, help="forward batch (BATCH_SIZE)")

    def handle(self, *args: Any, **options: Any) -> None:
        sample = max(2, int(options["sample"]))
        batch = max(1, int(options["batch"] or similarity_settings.BATCH_SIZE))
        assets = list(image_assets().order_by("?")[:sample])
        pixels, skipped = [], 0
        for asset in assets:
            file = image_file(asset)
            try:
                with file.open("rb") as handle:
                    pixels.append(load_and_preprocess(handle))
            except Exception:  # unreadable or refused images are the worker's business
                skipped += 1
        if len(pixels) < 2:
            raise CommandError(f"Need at least 2 readable image assets; found {len(pixels)}.")
        stacked = np.stack(pixels)

        name, revision = similarity_settings.MODEL_NAME, similarity_settings.model_revision
        key = base_model_key()
        fp32 = Dinov2Embedder.load(name, revision, "cpu", key, precision="fp32")
        reference, fp32_seconds = _timed_embed(fp32, stacked, batch)
        del fp32
        int8 = Dinov2Embedder.load(name, revision, "cpu", key + "+int8", precision="int8")
        quantized, int8_seconds = _timed_embed(int8, stacked, batch)

        cosine = np.sum(reference * quantized, axis=1)
        overlap = neighbour_overlap(reference, quantized)
        speed = fp32_seconds / int8_seconds if int8_seconds else float("inf")
        safe = overlap >= MIN_OVERLAP and float(cosine.mean()) >= MIN_MEAN_COSINE
        out = self.stdout.write
        out(f"Model {key}: {len(pixels)} images embedded in fp32 and int8 (batch {batch})"
            + (f", {skipped} unreadable skipped" if skipped else ""))
        out(f"cosine fp32 vs int8: mean {cosine.mean():.4f}, min {cosine.min():.4f}")
        out(f"top-{min(10, len(pixels) - 1)} neighbour overlap within the sample: {overlap:.3f}")
        out(f"forward speed: fp32 {len(pixels) / fp32_seconds:.1f} img/s, "
            f"int8 {len(pixels) / int8_seconds:.1f} img/s ({speed:.2f}x)")
        if safe:
            out(self.style.SUCCESS(
                f"Verdict: int8 is safe to switch on (overlap >= {MIN_OVERLAP}, mean cosine >= "
                f"{MIN_MEAN_COSINE}). Set SIMILARITY['PRECISION'] = 'int8': every image is "
                "re-embedded beside the current vectors, which serve until the new ones are ready."
            ))
        else:
            out(self.style.WARNING(
                f"Verdict: NOT safe: int8 changes the neighbours too much (needs overlap >= "
                f"{MIN_OVERLAP} and mean cosine >= {MIN_MEAN_COSINE}). Keep fp32."
            ))
