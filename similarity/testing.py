"""Helpers for tests (ours and hosts'): a random-weight DINOv2 saved like a real one.

Nothing here downloads anything. The checkpoint goes through ``save_pretrained`` and is
loaded back by the production ``from_pretrained`` path.
"""

from __future__ import annotations

from pathlib import Path

#: dinov2-small's architecture (random weights cost the same as the real ones).
SMALL = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
         "intermediate_size": 1536}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64}


def make_dinov2_checkpoint(folder: str | Path, *, size: dict | None = None, seed: int = 0) -> Path:
    """Write config.json + model.safetensors for a random DINOv2 into ``folder``."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Dinov2Config(image_size=224, patch_size=14, **(size or TINY))
    model = Dinov2Model(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return folder
