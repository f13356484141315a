"""How the insight stage follows the embedding layer: connected in ``ready()``."""

from __future__ import annotations

from typing import Any

from similarity.embedding import sweep
from similarity.embedding.signals import project_ready
from similarity.insight import scheduling


def on_project_ready(sender: Any, *, project_id: str, **kwargs: Any) -> None:
    scheduling.queue_after_embedding(project_id)


def connect() -> None:
    project_ready.connect(on_project_ready, dispatch_uid="similarity_insight_project_ready")
    # lists made stale by deletes and moves, which queue no embedding
    sweep.register_step("insight", lambda: {"insight_queued": scheduling.sweep()})
