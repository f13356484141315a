"""DINOv2 loading, preprocessing and batched inference.

The model is loaded once per worker process through ``from_pretrained`` with
safetensors only, a pinned revision and no remote code. Preprocessing is a plain PIL +
NumPy path equal to the ``transformers`` DINOv2 image processor (short side 256 bicubic,
centre crop 224, ImageNet mean/std) but about 1.4x faster; JPEGs may be decoded in
draft mode (DCT scaling), which is several times faster on large photos (see tests and
bench/embed.py for the measured difference).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from similarity.conf import similarity_settings
from similarity.images import check_aspect_ratio, load_rgb

logger = logging.getLogger(__name__)

RESIZE_SHORT = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Draft decoding keeps at least this size, so the bicubic resize still antialiases.
DRAFT_SIZE = (RESIZE_SHORT, RESIZE_SHORT)


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message is meant for an operator."""


def resize_and_crop(image: Image.Image) -> Image.Image:
    """Short side to 256 (bicubic), then the centre 224x224, as DINOv2 was trained.

    The resize scales the long side by the same factor as the short one, so its memory
    grows with the aspect ratio: images beyond MAX_ASPECT_RATIO are refused first
    (ImageDecodeError), whoever calls this.
    """
    width, height = image.size
    check_aspect_ratio(width, height, similarity_settings.MAX_ASPECT_RATIO)
    if width <= height:
        size = (RESIZE_SHORT, int(RESIZE_SHORT * height / width))
    else:
        size = (int(RESIZE_SHORT * width / height), RESIZE_SHORT)
    image = image.resize(size, Image.Resampling.BICUBIC)
    left = (size[0] - CROP) // 2
    top = (size[1] - CROP) // 2
    return image.crop((left, top, left + CROP, top + CROP))


def preprocess(image: Image.Image) -> np.ndarray:
    """An RGB PIL image -> normalised float32 array of shape (3, 224, 224)."""
    array = np.asarray(resize_and_crop(image), dtype=np.float32)
    array = array * np.float32(1 / 255)
    array = (array - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_and_preprocess(fp: IO[bytes] | str, *, draft: bool = True) -> np.ndarray:
    """Decode (first frame, EXIF orientation, any mode) and preprocess one image.

    Needles (more elongated than MAX_ASPECT_RATIO) are refused from the header, before
    any pixel is decoded.
    """
    image = load_rgb(fp, draft=DRAFT_SIZE if draft else None,
                     max_aspect_ratio=similarity_settings.MAX_ASPECT_RATIO)
    return preprocess(image)


def _is_local(name: str) -> bool:
    return os.path.isdir(name)


def _local_fingerprint(folder: str) -> str:
    """A short content hash of a local checkpoint, so retrained weights get a new key."""
    digest = hashlib.sha256()
    root = Path(folder)
    for filename in ("config.json", "model.safetensors"):
        path = root / filename
        if not path.exists():
            continue
        stat = path.stat()
        digest.update(f"{filename}:{stat.st_size}".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 16))
            if stat.st_size > 1 << 17:
                handle.seek(-(1 << 16), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:12]


_key_cache: dict[tuple[str, str | None, float], str] = {}

PRECISIONS = ("fp32", "int8", "fp16")


def current_precision() -> str:
    """The numeric precision the worker runs the model in, from settings alone.

    ``PRECISION`` None (the default) means fp16 when ``DEVICE`` is explicitly "cuda" and
    fp32 otherwise; "int8" is dynamic int8 quantization of the linear layers (CPU only),
    "fp16" is autocast half precision (CUDA only). It is decided from settings, never
    from the hardware the calling process sees: the web process (no GPU) and the worker
    (maybe one) must agree on the model key. So DEVICE="auto" stays fp32 even on a GPU.
    """
    setting = similarity_settings.PRECISION
    if setting is None:
        return "fp16" if similarity_settings.DEVICE == "cuda" else "fp32"
    if setting not in PRECISIONS:
        raise ModelLoadError(
            f"SIMILARITY['PRECISION'] is {setting!r}; use None, 'fp32', 'int8' (CPU) or "
            "'fp16' (CUDA)."
        )
    return setting


def precision_suffix(precision: str) -> str:
    """What a precision adds to the model key: nothing for fp32 (keys stay as they were)."""
    return "" if precision == "fp32" else f"+{precision}"


def current_model_key() -> str:
    """``name@revision`` of the configured model (``+int8``/``+fp16`` when not fp32),
    without loading it.

    The precision is part of the key because vectors of one checkpoint at two precisions
    differ slightly: they must never share an index or a scope, so a change of precision
    is handled like a change of model (re-embedded beside the old vectors, switched when
    ready).
    """
    return base_model_key() + precision_suffix(current_precision())


def base_model_key() -> str:
    """``name@revision`` of the configured checkpoint, whatever the precision."""
    name = similarity_settings.MODEL_NAME
    if _is_local(name):
        revision = similarity_settings.MODEL_REVISION
        weights = Path(name) / "model.safetensors"
        mtime = weights.stat().st_mtime if weights.exists() else 0.0
        cache_key = (name, revision, mtime)
        if cache_key not in _key_cache:
            label = os.path.basename(os.path.normpath(name))
            _key_cache[cache_key] = f"{label}@{revision or _local_fingerprint(name)}"
        return _key_cache[cache_key]
    return f"{name}@{similarity_settings.model_revision}"


def _first_line(exc: BaseException) -> str:
    """The gist of a library's (often multi-line) error, without server paths' noise."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def pick_device(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of every nn.Linear (weights int8, activations quantized
    per batch): about 2.5x the fp32 forward on this machine's AVX-512 CPU, cosine > 0.99
    to fp32 (see ``similarity_check_int8`` to measure it on your own images)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which we don't ship;
        # quantize_dynamic still works in torch 2.x and is what CPU workers need.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False
        )


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
        if _is_local(name):
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
                "model.safetensors, or to a Hugging Face hub id the worker can download.\n"
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


def model_problem() -> str | None:
    """Why the configured model cannot load, found without loading it; None if it can.

    Cheap enough for a health check: a local folder must hold config.json and
    model.safetensors; a hub id must be in the local cache when the hub is offline.
    """
    name = similarity_settings.MODEL_NAME
    source = similarity_settings.MODEL_NAME_SOURCE
    if _is_local(name):
        missing = [f for f in ("config.json", "model.safetensors") if not (Path(name) / f).exists()]
        if missing:
            return f"The model folder named by {source} lacks {' and '.join(missing)}."
        return None
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return f"The model folder {name!r} named by {source} does not exist."
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if offline:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(
                name, "config.json", revision=similarity_settings.model_revision
            )
        except Exception:  # a malformed id
            cached = None
        if not isinstance(cached, str):
            return (f"The model {name!r} is not in the local Hugging Face cache and the hub is "
                    f"offline (HF_HUB_OFFLINE); set {source} to a local folder.")
    return None


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
    """Drop cached models and failures (tests, settings changes)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
        _key_cache.clear()
