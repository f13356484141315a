"""Precision is part of the model: int8 on the CPU agrees with fp32, keys never mix, the
GPU path runs fp16 (only where a GPU exists), and the operator's check command reports."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings
from PIL import Image

from similarity.management.commands.similarity_check_int8 import neighbour_overlap
from similarity.testing import make_dinov2_checkpoint
from similarity.vectors import embedder as embedder_module
from similarity.vectors import model_keys
from similarity.vectors.embedder import Dinov2Embedder
from similarity.vectors.model_keys import ModelLoadError
from similarity.vectors.preprocess import load_and_preprocess
from tests import factories

#: Big enough that int8 rounding matters (4 layers, 128 wide), small enough to run in ~1 s.
MEDIUM = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
          "intermediate_size": 512}


def family_image(family: int, member: int) -> bytes:
    """Members of a family share a smooth colour layout and differ by pixel noise, so each
    image's 10 nearest neighbours are its family: a structure quantization must keep."""
    base = np.random.default_rng(family).integers(0, 256, (6, 6, 3)).astype(np.uint8)
    image = np.asarray(Image.fromarray(base).resize((96, 96), Image.Resampling.BICUBIC), np.float32)
    image += np.random.default_rng(1000 * family + member).normal(0, 6, image.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def medium_model(tmp_path_factory) -> str:
    return str(make_dinov2_checkpoint(tmp_path_factory.mktemp("medium") / "dinov2-medium",
                                      size=MEDIUM))


def _similarity(**overrides):
    from django.conf import settings

    return override_settings(SIMILARITY={**settings.SIMILARITY, **overrides})


def test_int8_agrees_with_fp32(medium_model):
    pixels = np.stack([load_and_preprocess(io.BytesIO(family_image(f, m)))
                       for f in range(6) for m in range(11)])
    fp32 = Dinov2Embedder.load(medium_model, "main", "cpu", "k", precision="fp32")
    int8 = Dinov2Embedder.load(medium_model, "main", "cpu", "k+int8", precision="int8")
    reference, quantized = fp32.embed(pixels), int8.embed(pixels)

    assert any("quantized" in type(m).__module__ for m in int8.model.modules())
    assert not any("quantized" in type(m).__module__ for m in fp32.model.modules())
    cosine = np.sum(reference * quantized, axis=1)
    assert cosine.min() < 1.0  # it really is another computation...
    assert cosine.mean() >= 0.99  # ...that lands next to fp32
    assert neighbour_overlap(reference, quantized) >= 0.9
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)


def test_neighbour_overlap_measures_agreement():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((30, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert neighbour_overlap(vectors, vectors) == 1.0
    shuffled = vectors[rng.permutation(30)]
    assert neighbour_overlap(vectors, shuffled) < 0.6


def test_model_key_carries_the_precision(settings):
    base = model_keys.base_model_key()
    with _similarity(PRECISION=None, DEVICE="cpu"):
        assert model_keys.current_model_key() == base
    with _similarity(PRECISION="fp32", DEVICE="auto"):
        assert model_keys.current_model_key() == base
    with _similarity(PRECISION="int8", DEVICE="cpu"):
        assert model_keys.current_model_key() == base + "+int8"
    # An explicit GPU runs fp16 by default; "auto" stays fp32 whatever hardware the
    # web process sees, so web and worker always agree on the key.
    with _similarity(PRECISION=None, DEVICE="cuda"):
        assert model_keys.current_model_key() == base + "+fp16"
    with _similarity(PRECISION=None, DEVICE="auto"):
        assert model_keys.current_model_key() == base
    with _similarity(PRECISION="fp8"), pytest.raises(ModelLoadError, match="PRECISION"):
        model_keys.current_model_key()


def test_get_embedder_loads_int8_under_the_int8_key():
    with _similarity(PRECISION="int8", DEVICE="auto"):
        embedder = embedder_module.get_embedder()
        assert embedder.model_key.endswith("+int8")
        assert embedder.precision == "int8" and embedder.device == "cpu"
        vectors = embedder.embed(np.zeros((2, 3, 224, 224), np.float32))
        assert vectors.shape == (2, embedder.dims)


def test_int8_on_a_gpu_and_fp16_on_the_cpu_are_refused(medium_model):
    with pytest.raises(ModelLoadError, match="CPU only"):
        Dinov2Embedder.load(medium_model, "main", "cuda", "k+int8", precision="int8")
    with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
        Dinov2Embedder.load(medium_model, "main", "cpu", "k+fp16", precision="fp16")


@pytest.mark.django_db
def test_check_int8_command_reports_a_verdict(dataset_a):
    for f in range(3):
        for m in range(4):
            factories.asset(dataset_a, f"f{f}_{m}.png", family_image(f, m))
    out = io.StringIO()
    call_command("similarity_check_int8", "--sample", "20", stdout=out)
    text = out.getvalue()
    assert "12 images embedded in fp32 and int8" in text
    mean, low = map(float, re.search(r"mean ([\d.]+), min ([\d.]+)", text).groups())
    assert 0.9 < low <= mean <= 1.0
    assert re.search(r"neighbour overlap within the sample: [01]\.\d{3}", text)
    assert re.search(r"int8 [\d.]+ img/s \([\d.]+x\)", text)
    assert "Verdict: int8 is safe" in text or "Verdict: NOT safe" in text


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(),
    reason="no CUDA GPU on this machine: the fp16 GPU path cannot run here",
)
def test_gpu_runs_fp16_with_gpu_batches(medium_model):
    pixels = np.stack([load_and_preprocess(io.BytesIO(family_image(f, 0))) for f in range(8)])
    with _similarity(GPU_BATCH_SIZE=4):
        gpu = Dinov2Embedder.load(medium_model, "main", "cuda", "k+fp16", precision="fp16")
    cpu = Dinov2Embedder.load(medium_model, "main", "cpu", "k", precision="fp32")
    assert gpu.device == "cuda" and gpu.batch_size == 4
    half, full = gpu.embed(pixels), cpu.embed(pixels)  # 8 images: split into 2 GPU batches
    assert half.dtype == np.float32 and half.shape == full.shape
    assert np.sum(half * full, axis=1).min() >= 0.99
