"""The text-aligned second model (SigLIP / SigLIP 2): its image tower and its text tower.

DINOv2 ranks images against images; it cannot read a description. A SigLIP model embeds
text and images into one space, so "cracked casing" can be ranked against the images'
vectors of this model (rows of their own model key, ``model_keys.text_model_key``). The
two towers load separately: the worker needs the image tower (beside DINOv2, fed from
the same decode of each image) and the text tower (for queries); a web process that
embeds queries itself loads the text tower only, never an image model.

Both load through ``from_pretrained`` with safetensors only, no remote code and the
configured revision; a checkpoint's weights of the other tower are simply not read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from similarity.conf import similarity_settings
from similarity.vectors.devices import pick_device, quantize_int8
from similarity.vectors.model_keys import (
    ModelLoadError,
    current_precision,
    is_local_checkpoint,
    text_model_key,
)

logger = logging.getLogger(__name__)

#: SigLIP's own preprocessing defaults (its image processor's): squash to the model's
#: square size with bicubic resampling, rescale to 0..1, then (x - 0.5) / 0.5.
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)
DEFAULT_RESAMPLE = int(Image.Resampling.BICUBIC)
#: SigLIP 2 reads 64 tokens of text: its training length, and what padding fills.
DEFAULT_TEXT_LENGTH = 64


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@dataclass(frozen=True)
class ImagePreprocessing:
    """How the checkpoint's image processor prepares an image (read from its
    ``preprocessor_config.json``, else SigLIP's defaults)."""

    width: int
    height: int
    resample: int = DEFAULT_RESAMPLE
    rescale: float = 1 / 255
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    _scale: np.ndarray = field(init=False, repr=False, compare=False)
    _shift: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # (x * rescale - mean) / std as one multiply-add per value, computed in float64
        # once and applied in float32: within 1e-6 of the processor's own arithmetic
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        object.__setattr__(self, "_scale", (self.rescale / std).astype(np.float32))
        object.__setattr__(self, "_shift", (-mean / std).astype(np.float32))

    @classmethod
    def from_folder(cls, folder: str | Path | None, image_size: int) -> ImagePreprocessing:
        """The processor config saved beside the weights, when there is one."""
        config: dict[str, Any] = {}
        path = Path(folder) / "preprocessor_config.json" if folder else None
        if path is not None and path.exists():
            config = json.loads(path.read_text())
        size = config.get("size") or {}
        return cls(
            width=int(size.get("width", image_size)),
            height=int(size.get("height", image_size)),
            resample=int(config.get("resample", DEFAULT_RESAMPLE)),
            rescale=float(config.get("rescale_factor", 1 / 255)),
            mean=tuple(config.get("image_mean", DEFAULT_MEAN)),
            std=tuple(config.get("image_std", DEFAULT_STD)),
        )

    def __call__(self, rgb: Image.Image) -> np.ndarray:
        """An RGB image -> (3, height, width) float32, as the processor gives it."""
        resized = rgb.resize((self.width, self.height), Image.Resampling(self.resample))
        array = np.asarray(resized, dtype=np.float32)
        array = array * self._scale + self._shift
        return np.ascontiguousarray(array.transpose(2, 0, 1))


def _load_kwargs(name: str, revision: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if is_local_checkpoint(name):
        kwargs["local_files_only"] = True
    else:
        kwargs["revision"] = revision
    return kwargs


def _from_pretrained(model_class: Any, name: str, revision: str, tower: str) -> Any:
    """One tower of the checkpoint. The other tower's weights are unexpected keys and are
    skipped quietly; a missing weight of this tower is an error (it would be random)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the skipped tower's keys fill a page of warnings
    try:
        model, info = model_class.from_pretrained(
            name, output_loading_info=True, **_load_kwargs(name, revision))
    except Exception as exc:  # transformers raises many types; all mean "cannot load"
        raise ModelLoadError(
            f"Could not load the text model {name!r} ({tower} tower). Set "
            f"{similarity_settings.TEXT_MODEL_NAME_SOURCE} to a folder holding config.json, "
            "model.safetensors and the tokenizer, or to a SigLIP hub id the worker can "
            "download (offline, for a try-out: `python manage.py similarity_make_test_model "
            "--text DIR`).\n" + _first_line(exc)
        ) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    model_type = getattr(model.config, "model_type", "?")
    if not str(model_type).startswith("siglip"):
        raise ModelLoadError(
            f"{name!r} is a {model_type!r} model; text search needs a SigLIP or SigLIP 2 "
            "checkpoint (model_type 'siglip', e.g. google/siglip2-base-patch32-256).")
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ModelLoadError(
            f"The text model {name!r} lacks {len(missing)} weights of its {tower} tower "
            f"(first: {missing[0]}); is it a SigLIP checkpoint with both towers?")
    return model


def _place(model: Any, precision: str) -> tuple[Any, str]:
    """Device and precision as the image model's settings say (int8: the CPU)."""
    import torch

    device = "cpu" if precision == "int8" else pick_device(similarity_settings.DEVICE)
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    model.eval().to(device)
    if precision == "int8":
        model = quantize_int8(model)
    return model, device


def _unit(tensor: Any) -> np.ndarray:
    import torch

    return torch.nn.functional.normalize(tensor.float(), dim=-1).cpu().numpy()


@dataclass
class SiglipImageTower:
    """The text model's image side: what the worker feeds beside DINOv2."""

    model: Any
    model_key: str
    dims: int
    device: str
    prepare: ImagePreprocessing
    precision: str = "fp32"
    batch_size: int = 8

    @classmethod
    def load(cls, name: str, revision: str, model_key: str, precision: str) -> SiglipImageTower:
        from transformers import SiglipVisionModel

        started = time.monotonic()
        model = _from_pretrained(SiglipVisionModel, name, revision, "image")
        image_size = int(model.config.image_size)
        folder = name if is_local_checkpoint(name) else _hub_folder(name, revision)
        prepare = ImagePreprocessing.from_folder(folder, image_size)
        model, device = _place(model, precision)
        dims = int(model.config.hidden_size)
        logger.info("Loaded %s (image tower) on %s (%s) in %.1f s (%d dims, %dx%d px)",
                    model_key, device, precision, time.monotonic() - started, dims,
                    prepare.width, prepare.height)
        return cls(model=model, model_key=model_key, dims=dims, device=device,
                   prepare=prepare, precision=precision,
                   batch_size=max(1, int(similarity_settings.BATCH_SIZE)))

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, dims) unit vectors (the pooled, projected output)."""
        import torch

        if len(batch) > self.batch_size:
            return np.concatenate([self.embed(batch[start:start + self.batch_size])
                                   for start in range(0, len(batch), self.batch_size)])
        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            if self.precision == "fp16":
                with torch.autocast(device_type=self.device, dtype=torch.float16):
                    output = self.model(pixel_values=pixels)
            else:
                output = self.model(pixel_values=pixels)
            return _unit(output.pooler_output)


@dataclass
class SiglipTextTower:
    """The text model's text side: a description -> a unit vector in the images' space."""

    model: Any
    tokenizer: Any
    model_key: str
    dims: int
    device: str
    max_length: int = DEFAULT_TEXT_LENGTH

    @classmethod
    def load(cls, name: str, revision: str, model_key: str, precision: str) -> SiglipTextTower:
        from transformers import AutoTokenizer, SiglipTextModel

        started = time.monotonic()
        model = _from_pretrained(SiglipTextModel, name, revision, "text")
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, **_load_kwargs(name, revision))
        except Exception as exc:
            raise ModelLoadError(
                f"Could not load the tokenizer of the text model {name!r}: {_first_line(exc)}"
            ) from exc
        max_length = int(getattr(model.config, "max_position_embeddings", DEFAULT_TEXT_LENGTH))
        model, device = _place(model, precision)
        dims = int(getattr(model.config, "projection_size", None) or model.config.hidden_size)
        logger.info("Loaded %s (text tower) on %s (%s) in %.1f s", model_key, device, precision,
                    time.monotonic() - started)
        return cls(model=model, tokenizer=tokenizer, model_key=model_key, dims=dims,
                   device=device, max_length=max_length)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Descriptions -> (N, dims) unit vectors.

        SigLIP was trained on lowercased text padded to its full length ("max_length"
        padding, as the model cards say): other padding gives other vectors.
        """
        import torch

        tokens = self.tokenizer([normalise_text(text).lower() for text in texts],
                                padding="max_length", truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            output = self.model(input_ids=tokens["input_ids"].to(self.device))
            return _unit(output.pooler_output)


def normalise_text(text: str) -> str:
    """One form of a description (NFKC, single spaces): "Cracked  casing" and "cracked
    casing" are the same query, embedded once."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _hub_folder(name: str, revision: str) -> str | None:
    """The downloaded snapshot of a hub checkpoint (for its preprocessor config)."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, revision=revision, allow_patterns=["*.json"])
    except Exception:  # no config beside the weights: SigLIP's defaults apply
        logger.warning("No preprocessor_config.json for %s; using SigLIP's defaults", name)
        return None


_lock = threading.Lock()
_loaded: dict[tuple[str, str], Any] = {}
_failed: dict[tuple[str, str], tuple[float, ModelLoadError]] = {}
RETRY_FAILED_LOAD_AFTER = 60.0


def _get(tower: str, loader: Any) -> Any:
    key = text_model_key()
    if key is None:
        raise ModelLoadError("No text model is configured (SIMILARITY['TEXT_MODEL_NAME']).")
    slot = (tower, key)
    with _lock:
        if slot in _loaded:
            return _loaded[slot]
        failed = _failed.get(slot)
        if failed and time.monotonic() - failed[0] < RETRY_FAILED_LOAD_AFTER:
            raise failed[1]
        try:
            loaded = loader.load(str(similarity_settings.TEXT_MODEL_NAME),
                                 similarity_settings.text_model_revision, key,
                                 current_precision())
        except ModelLoadError as exc:
            logger.error("%s", exc)
            _failed[slot] = (time.monotonic(), exc)
            raise
        for other in [s for s in _loaded if s[0] == tower]:
            del _loaded[other]  # one model per tower and process: a key change frees it
        _loaded[slot] = loaded
        _failed.pop(slot, None)
        return loaded


def get_image_tower() -> SiglipImageTower:
    """The process's text-model image tower (the worker's), loaded on first use; a failed
    load is remembered for a minute, like the image model's."""
    return _get("image", SiglipImageTower)


def get_text_tower() -> SiglipTextTower:
    """The process's text tower (the worker's, or the web process's when it embeds
    queries itself), loaded on first use."""
    return _get("text", SiglipTextTower)


def forget_text_models() -> None:
    """Drop loaded towers and remembered failures (tests, settings changes)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
