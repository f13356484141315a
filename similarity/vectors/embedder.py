"""DINOv2 loading and batched inference, once per process.

The model is loaded through ``from_pretrained`` with safetensors only, a pinned revision
and no remote code; a failed load is remembered for a minute so a queue of tasks does not
retry a broken download hundreds of times.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from similarity.conf import similarity_settings
from similarity.vectors.devices import pick_device, quantize_int8
from similarity.vectors.model_keys import (
    PRECISIONS,
    ModelLoadError,
    current_model_key,
    current_precision,
    forget_keys,
    is_local_checkpoint,
)
from similarity.vectors.text_model import forget_text_models

logger = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    """The gist of a library's (often multi-line) error, without server paths' noise."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@dataclass
class Dinov2Embedder:
    """A loaded DINOv2 model; ``embed`` maps preprocessed batches to unit vectors."""

    model: Any
    model_key: str
    dims: int
    device: str
    precision: str = "fp32"
    batch_size: int = 8

    @classmethod
    def load(
        cls, name: str, revision: str, device: str, model_key: str, precision: str = "fp32"
    ) -> Dinov2Embedder:
        import torch
        from transformers import AutoModel

        if precision not in PRECISIONS:
            raise ModelLoadError(f"Unknown precision {precision!r}; use one of {PRECISIONS}.")
        # int8 is a CPU feature: "auto" means the CPU then; a GPU named explicitly is a
        # contradiction in the settings and is refused (we never silently run another
        # precision than the model key says).
        if precision == "int8":
            if device not in ("auto", "cpu"):
                raise ModelLoadError(
                    f"SIMILARITY['PRECISION']='int8' runs on the CPU only, but DEVICE is "
                    f"{device!r}. Use DEVICE='cpu' (or 'auto') for int8, or PRECISION None "
                    "for the GPU (fp16)."
                )
            device = "cpu"
        kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
        if is_local_checkpoint(name):
            kwargs["local_files_only"] = True
        else:
            kwargs["revision"] = revision
        started = time.monotonic()
        try:
            model = AutoModel.from_pretrained(name, **kwargs)
        except Exception as exc:  # transformers raises many types; all mean "cannot load"
            raise ModelLoadError(
                f"Could not load the image model {name!r}. Set "
                f"{similarity_settings.MODEL_NAME_SOURCE} to a folder holding config.json and "
                "model.safetensors, or to a Hugging Face hub id the worker can download "
                "(offline, for a try-out: `python manage.py similarity_make_test_model DIR` "
                "writes a random-weight model there).\n"
                f"{_first_line(exc)}"
            ) from exc
        model_type = getattr(model.config, "model_type", "?")
        if model_type != "dinov2":
            raise ModelLoadError(
                f"{name!r} is a {model_type!r} model; similarity search needs a DINOv2 "
                "checkpoint (model_type 'dinov2')."
            )
        device = pick_device(device)
        if precision == "fp16" and device != "cuda":
            raise ModelLoadError(
                f"SIMILARITY['PRECISION']='fp16' needs a CUDA GPU, but the device is {device!r}."
            )
        if device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        model.eval().to(device)
        if precision == "int8":
            model = quantize_int8(model)
        batch_size = int(similarity_settings.BATCH_SIZE)
        if device == "cuda":
            batch_size = int(similarity_settings.GPU_BATCH_SIZE or batch_size)
        logger.info(
            "Loaded %s on %s (%s, batch %d) in %.1f s (%d dims)",
            model_key, device, precision, batch_size, time.monotonic() - started,
            model.config.hidden_size,
        )
        return cls(model=model, model_key=model_key, dims=model.config.hidden_size,
                   device=device, precision=precision, batch_size=max(1, batch_size))

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, 224, 224) float32 -> (N, dims) float32, each row L2-normalised CLS.

        On CUDA the forward runs under fp16 autocast when the precision is fp16 (the
        normalisation stays in float32); a batch bigger than ``batch_size`` is split.
        """
        import torch

        if len(batch) > self.batch_size:
            return np.concatenate([
                self.embed(batch[start:start + self.batch_size])
                for start in range(0, len(batch), self.batch_size)
            ])
        with torch.inference_mode():
            pixels = torch.from_numpy(batch).to(self.device)
            if self.precision == "fp16":
                with torch.autocast(device_type=self.device, dtype=torch.float16):
                    output = self.model(pixel_values=pixels)
            else:
                output = self.model(pixel_values=pixels)
            cls_token = output.pooler_output  # the layer-normed CLS token
            vectors = torch.nn.functional.normalize(cls_token.float(), dim=-1)
        return vectors.cpu().numpy()

    def patch_tokens(self, pixels: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) float32, H and W multiples of the patch size -> (H/p, W/p, dims)
        float32: the last layer's layer-normed patch tokens, each L2-normalised.

        What a match map compares a query vector with: the same layer and norm as the CLS
        token ``embed`` returns, so a patch's cosine to a query is on the vectors' scale.
        DINOv2 interpolates its position embeddings, so the whole image is seen (not the
        centre crop), at the model's and precision's own cost per patch.
        """
        import torch

        patch = int(getattr(self.model.config, "patch_size", 14))
        rows, columns = pixels.shape[2] // patch, pixels.shape[3] // patch
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
            if self.precision == "fp16":
                with torch.autocast(device_type=self.device, dtype=torch.float16):
                    output = self.model(pixel_values=tensor)
            else:
                output = self.model(pixel_values=tensor)
            tokens = output.last_hidden_state[0, -rows * columns:].float()
            tokens = torch.nn.functional.normalize(tokens, dim=-1)
        return tokens.cpu().numpy().reshape(rows, columns, -1)



_lock = threading.Lock()
_loaded: dict[str, Dinov2Embedder] = {}
_failed: dict[str, tuple[float, ModelLoadError]] = {}
RETRY_FAILED_LOAD_AFTER = 60.0


def get_embedder() -> Dinov2Embedder:
    """The process's model for the configured key; loads it on first use.

    A failed load is remembered for a minute so a queue of tasks doesn't retry a
    broken download hundreds of times in a row.
    """
    key = current_model_key()
    with _lock:
        if key in _loaded:
            return _loaded[key]
        failed = _failed.get(key)
        if failed and time.monotonic() - failed[0] < RETRY_FAILED_LOAD_AFTER:
            raise failed[1]
        try:
            embedder = Dinov2Embedder.load(
                similarity_settings.MODEL_NAME,
                similarity_settings.model_revision,
                similarity_settings.DEVICE,
                key,
                precision=current_precision(),
            )
        except ModelLoadError as exc:
            logger.error("%s", exc)
            _failed[key] = (time.monotonic(), exc)
            raise
        _loaded.clear()  # one model per process: a key change frees the old one
        _loaded[key] = embedder
        _failed.pop(key, None)
        return embedder


def forget_loaded_models() -> None:
    """Drop cached models and failures, the text model's too (tests, settings changes)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
    forget_text_models()
    forget_keys()
