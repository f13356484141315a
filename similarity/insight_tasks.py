"""django-q2 entry point of the insight stage, at the dotted path its queued tasks store
(``similarity.insight_tasks.run_insight``); the work is ``similarity.insight``'s."""

from __future__ import annotations

from typing import Any

from similarity.insight import scheduling
from similarity.insight.scheduling import INSIGHT_TASK, request_insight, run_until_done

__all__ = ["INSIGHT_TASK", "request_insight", "run_insight", "run_until_done"]


def run_insight(project_id: str, budget_seconds: float | None = None) -> dict[str, Any]:
    """Task: one budgeted pass of the scope's analysis (``similarity.insight.stage``)."""
    return scheduling.run_insight(project_id, budget_seconds)
