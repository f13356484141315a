"""django-q2 entry points, at the dotted paths queued tasks and the sweep's ``Schedule``
row store (``similarity.tasks.embed_project``, ``.sweep``, ``.embed_query_image``,
``.embed_text_query``, ``.compute_match``).

Thin on purpose: each hands over to the layer that does the work, so a queued task keeps
working however the code behind it is arranged. The scheduling functions hosts call
(``schedule_embedding``, ``forget_assets``, ``reindex_project``, ``request_embedding``)
are re-exported here too.
"""

from __future__ import annotations

from typing import Any

from similarity.embedding import sweep as _sweep
from similarity.embedding import worker
from similarity.embedding.scheduling import (
    create_missing_rows,
    forget_assets,
    project_ids_with_assets,
    reindex_project,
    request_embedding,
    retry_failed,
    schedule_embedding,
)
from similarity.match import computing as match_computing
from similarity.search import outside
from similarity.search import text as text_search

__all__ = [
    "compute_match",
    "create_missing_rows",
    "embed_project",
    "embed_query_image",
    "embed_text_query",
    "forget_assets",
    "project_ids_with_assets",
    "reindex_project",
    "request_embedding",
    "retry_failed",
    "schedule_embedding",
    "sweep",
]


def embed_project(project_id: str, **options: Any) -> dict[str, Any]:
    """Task: embed the project's pending rows (``similarity.embedding.worker``)."""
    return worker.embed_project(project_id, **options)


def sweep() -> dict[str, Any]:
    """Task (the schedule's): every repair step (``similarity.embedding.sweep``)."""
    return _sweep.sweep()


def embed_query_image(query_id: str, crop: bytes) -> bool:
    """Task: embed an outside image a web process is waiting for (QUERY_EMBEDDING
    "worker"), with this worker's loaded model (``similarity.search.outside``)."""
    return outside.embed_queued(query_id, crop)


def embed_text_query(query_id: int) -> bool:
    """Task: embed a description a web process is waiting for (QUERY_EMBEDDING "worker"),
    with this worker's loaded text tower (``similarity.search.text``)."""
    return text_search.embed_queued(query_id)


def compute_match(map_id: int) -> bool:
    """Task: compute a match map a web process is waiting for (QUERY_EMBEDDING "worker"),
    with this worker's loaded model (``similarity.match.computing``)."""
    return match_computing.compute_queued(map_id)
