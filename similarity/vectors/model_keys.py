"""Which model and precision embed the vectors, and their key, decided from settings alone.

The model key (``name@revision``, plus ``+int8``/``+fp16``) is stored on every vector:
the web process (no GPU) and the worker (maybe one) must agree on it without loading the
model, so nothing here loads weights or looks at the hardware.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from similarity.conf import similarity_settings


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message is meant for an operator."""


def is_local_checkpoint(name: str) -> bool:
    """A folder on disk (loaded with local_files_only), not a hub id."""
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


def forget_keys() -> None:
    """Drop the cached keys of local checkpoints (tests that rewrite a folder's weights)."""
    _key_cache.clear()


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
    return checkpoint_key(similarity_settings.MODEL_NAME, similarity_settings.MODEL_REVISION,
                          similarity_settings.model_revision)


def checkpoint_key(name: str, revision: str | None, hub_revision: str) -> str:
    """``label@revision`` of a local folder (its content's fingerprint unless a revision is
    set), ``name@revision`` of a hub id."""
    if is_local_checkpoint(name):
        weights = Path(name) / "model.safetensors"
        mtime = weights.stat().st_mtime if weights.exists() else 0.0
        cache_key = (name, revision, mtime)
        if cache_key not in _key_cache:
            label = os.path.basename(os.path.normpath(name))
            _key_cache[cache_key] = f"{label}@{revision or _local_fingerprint(name)}"
        return _key_cache[cache_key]
    return f"{name}@{hub_revision}"


def text_model_key() -> str | None:
    """The text-aligned model's key (None: text search is off), from settings alone.

    Its image vectors are rows of this key in the same table as DINOv2's, so every
    follower of rows (moves, new files, deletes, the sweep, the caches) treats them alike;
    the precision is the image model's, so one setting decides the worker's speed.
    """
    name = similarity_settings.TEXT_MODEL_NAME
    if not name:
        return None
    key = checkpoint_key(str(name), similarity_settings.TEXT_MODEL_REVISION,
                         similarity_settings.text_model_revision)
    return key + precision_suffix(current_precision())


def current_model_keys() -> tuple[str, ...]:
    """Every key the worker embeds now: the image model's, then the text model's if any.
    Rows of any other key are leftovers of a model change."""
    text = text_model_key()
    return (current_model_key(), text) if text else (current_model_key(),)


def text_model_problem() -> str | None:
    """Why the configured text model cannot load, found without loading it; None if it
    can (or none is configured)."""
    name = similarity_settings.TEXT_MODEL_NAME
    if not name:
        return None
    source = similarity_settings.TEXT_MODEL_NAME_SOURCE
    if is_local_checkpoint(name):
        missing = [f for f in ("config.json", "model.safetensors") if not (Path(name) / f).exists()]
        if missing:
            return f"The text model folder named by {source} lacks {' and '.join(missing)}."
        return None
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return f"The text model folder {name!r} named by {source} does not exist."
    return None



def model_problem() -> str | None:
    """Why the configured model cannot load, found without loading it; None if it can.

    Cheap enough for a health check: a local folder must hold config.json and
    model.safetensors; a hub id must be in the local cache when the hub is offline.
    """
    name = similarity_settings.MODEL_NAME
    source = similarity_settings.MODEL_NAME_SOURCE
    if is_local_checkpoint(name):
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


