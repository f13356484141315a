"""How saved searches follow the embedding layer: connected in ``ready()``."""

from __future__ import annotations

from typing import Any

from similarity.embedding import sweep
from similarity.embedding.signals import batch_embedded
from similarity.watch.housekeeping import forget_deleted_projects
from similarity.watch.matching import check_new


def on_batch_embedded(sender: Any, *, project_id: str, row_ids: list[int], **kwargs: Any) -> None:
    check_new(project_id, row_ids)  # this batch only; never raises


def connect() -> None:
    batch_embedded.connect(on_batch_embedded, dispatch_uid="similarity_watch_batch_embedded")
    sweep.register_step("saved searches", lambda: {"forgotten_searches": forget_deleted_projects()})
