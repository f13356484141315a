"""What the pages say about embeddings: per dataset, per asset, and whether search works.

Read through similarity's public models and readiness (datasets may use similarity;
similarity never imports datasets). Counts are for the project's current model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from similarity.embedding import readiness
from similarity.host.scopes import scope_key
from similarity.models import Embedding


@dataclass(frozen=True)
class AssetEmbedding:
    status: str  # "done", "pending", "failed", "video"
    label: str
    reason: str = ""


def project_state(project_pk: int) -> Any:
    return readiness.get_readiness(scope_key(project_pk))


def search_unavailable_reason(state: Any) -> str:
    """Why Similarity Search cannot run in this project now ("" when it can): similarity's
    own answer, the one its menus and API give."""
    return readiness.unavailable_reason(state)


def embedded_per_dataset(project_pk: int, model_key: str) -> dict[int, dict[str, int]]:
    """{dataset pk: {"done": n, "failed": n}} in one grouped query."""
    rows = (
        Embedding.objects.filter(project_id=scope_key(project_pk), model_key=model_key)
        .values("asset__dataset_id")
        .annotate(
            done=Count("pk", filter=Q(status=Embedding.Status.DONE)),
            failed=Count("pk", filter=Q(status=Embedding.Status.FAILED)),
        )
    )
    return {row["asset__dataset_id"]: {"done": row["done"], "failed": row["failed"]} for row in rows}


def asset_embedding(asset: Any, model_key: str) -> AssetEmbedding:
    """This asset's state for the project's current model, in words."""
    if not asset.is_image:
        return AssetEmbedding("video", "Not embedded: similarity search is for images only.")
    row = Embedding.objects.filter(asset_id=asset.pk, model_key=model_key).only(
        "status", "error").first()
    if row is None or row.status == Embedding.Status.PENDING:
        return AssetEmbedding("pending", "Waiting to be embedded; searchable once done.")
    if row.status == Embedding.Status.FAILED:
        return AssetEmbedding("failed", "Could not be embedded, so it cannot be searched.",
                              row.error)
    return AssetEmbedding("done", "Embedded: ready for similarity search.")
