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


def make_dinov2_checkpoint(folder: str | Path, *, size: dict | None = None, seed: int = 0,
                           pooling: bool = False) -> Path:
    """Write config.json + model.safetensors for a random DINOv2 into ``folder``.

    ``pooling``: a DINOv2 whose CLS token is, by construction, the pooled content of its
    patches (uniform attention, identity value and output projections, no MLP, no
    position or CLS embedding; the patch projection stays random). A random model's CLS
    says nothing about where in an image its content is; this one's does, which is what a
    test of match maps needs: the map's geometry (grid orientation, token order, the
    region's place) is then checkable without trained weights.
    """
    import torch
    from transformers import Dinov2Config, Dinov2Model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Dinov2Config(image_size=224, patch_size=14, **(size or TINY))
    model = Dinov2Model(config).eval()
    if pooling:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith(("cls_token", "position_embeddings")) or any(
                        part in name for part in ("q_proj", "k_proj", ".query.", ".key.", "fc2")):
                    parameter.zero_()
                elif any(part in name for part in ("v_proj", "o_proj", ".value.", "output.dense")):
                    parameter.copy_(torch.eye(parameter.shape[0]) if parameter.dim() == 2
                                    else torch.zeros_like(parameter))
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def clustered_unit_vectors(count: int, dims: int, *, clusters: int = 1000, spread: float = 0.35,
                           seed: int = 0):
    """Unit vectors from a mixture of Gaussian clusters on the sphere (float32).

    Uniform random 384-d vectors are a pathological case (every neighbour is about
    equally far); real image embeddings are clustered, and so are these.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, count)
    out = np.empty((count, dims), dtype=np.float32)
    step = 100_000
    for start in range(0, count, step):
        part = labels[start:start + step]
        noise = rng.standard_normal((len(part), dims)).astype(np.float32) * (spread / dims**0.5)
        block = centres[part] + noise
        out[start:start + step] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def load_embeddings(asset_ids, project_ids, vectors, model_key: str) -> int:
    """Bulk-insert finished embedding rows with binary COPY (tests and benchmarks).

    ``vectors`` are stored as halfvec, exactly as the worker stores them.
    """
    import numpy as np
    from django.db import connection
    from django.utils import timezone
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    from similarity.models import Embedding

    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    now = timezone.now()
    dims = int(vectors.shape[1])
    table = Embedding._meta.db_table
    columns = ("asset_id, model_key, project_id, status, error, vector, dims, attempts, created, "
               "updated, source")
    with raw.cursor() as cursor, cursor.copy(
        f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        key_type = "int8" if all(isinstance(a, int | np.integer) for a in asset_ids[:1]) else "text"
        copy.set_types([key_type, "varchar", "varchar", "varchar", "text", "halfvec", "int2",
                         "int2", "timestamptz", "timestamptz", "varchar"])
        for asset_id, project_id, vector in zip(asset_ids, project_ids, vectors, strict=True):
            copy.write_row([int(asset_id) if key_type == "int8" else str(asset_id), model_key,
                            str(project_id), "done", "",
                            HalfVector(np.asarray(vector, dtype=np.float16)), dims, 1, now, now, ""])
    from similarity.embedding import readiness

    for project_id in {str(p) for p in project_ids}:
        readiness.refresh(project_id)  # derived state follows the rows, as after the worker
    return len(vectors)


#: A SigLIP-architecture model small enough for tests (random weights, 64-px images).
TINY_SIGLIP = {
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2, "max_position_embeddings": 16, "projection_size": 32},
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
}
def siglip2_base(patch: int, image_size: int = 256) -> dict:
    """SigLIP 2 base's architecture (google/siglip2-base-patch{16,32}-256): for benches,
    with random weights (the same cost per image and per query as the real weights)."""
    tower = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
             "num_attention_heads": 12}
    return {"text": {**tower, "max_position_embeddings": 64, "vocab_size": 256_000,
                     "projection_size": 768},
            "vision": {**tower, "image_size": image_size, "patch_size": patch}}


#: The words the tiny tokenizer knows (any other word is its unknown token).
TINY_VOCABULARY = (
    "a an the of with and in on photo picture image red green blue black white grey dark "
    "light cracked scratched broken dented clean casing part metal plastic screw bolt cat "
    "dog car tree house sky water road person face hand label text close up blurry sharp "
    "small large round square stripe stripes dots pattern"
).split()


def make_siglip_checkpoint(folder: str | Path, *, size: dict | None = None, seed: int = 0) -> Path:
    """Write a random-weight SigLIP model and a tokenizer built here (no download) into
    ``folder``: config.json, model.safetensors and a fast tokenizer's files, loaded back
    by the production ``from_pretrained`` paths of both towers.

    The tokenizer is a word-level vocabulary saved as a ``PreTrainedTokenizerFast``; a hub
    checkpoint's (SigLIP 2: Gemma's) loads through the same ``AutoTokenizer`` call.
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = size or TINY_SIGLIP
    pad, unknown, end = "<pad>", "<unk>", "<eos>"
    vocabulary = {token: index for index, token in
                  enumerate([pad, unknown, end, *TINY_VOCABULARY])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token=unknown))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    text_length = int(size["text"]["max_position_embeddings"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=pad,
                                   unk_token=unknown, eos_token=end,
                                   model_max_length=text_length)
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    # the architecture's own vocabulary size when it names one (the benches' SigLIP 2
    # base: 256,000, Gemma's); the tiny tokenizer only ever uses its first ids
    text = {"vocab_size": len(vocabulary), **size["text"], "pad_token_id": 0,
            "bos_token_id": 1, "eos_token_id": 2}
    config = SiglipConfig(text_config=text, vision_config=dict(size["vision"]))
    SiglipModel(config).eval().save_pretrained(folder, safe_serialization=True)
    side = int(size["vision"]["image_size"])
    SiglipImageProcessorPil(size={"height": side, "width": side}).save_pretrained(folder)
    return folder
