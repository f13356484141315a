"""Where and in what precision a model runs: shared by the image model and the text model."""

from __future__ import annotations

from typing import Any


def pick_device(setting: str) -> str:
    """"auto": the GPU when there is one (CUDA, then Apple's MPS), else the CPU."""
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
