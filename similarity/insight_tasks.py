"""The insight stage's own django-q2 task: budgeted, deduplicated per scope, resumable.

Why its own task: a full neighbour build of a big project takes minutes, which would hold
an embedding worker (and could pass Q_CLUSTER's timeout) if it ran inside
``embed_project``. Instead ``embed_project`` (after a batch) and the sweep call
``request_insight``, which queues one ``run_insight`` task per scope unless one is
already waiting (``InsightState.queued_at``, the way embedding tasks are deduplicated).
Each task works for ``INSIGHT_TASK_SECONDS`` and, if work is left, queues its own
continuation; progress is saved as it goes (see ``insight.analyse_project``), so a worker
killed mid-task leaves a cursor the redelivered task or the sweep's task resumes from.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from similarity import insight
from similarity.conf import similarity_settings
from similarity.insight_models import InsightState

logger = logging.getLogger(__name__)

INSIGHT_TASK = "similarity.insight_tasks.run_insight"


def request_insight(project_id: str, *, force: bool = False) -> bool:
    """Queue one insight task for the scope unless one is already waiting."""
    project_id = str(project_id)
    insight.get_state(project_id)
    now = timezone.now()
    stale = now - timedelta(seconds=similarity_settings.PENDING_TIMEOUT)
    queryset = InsightState.objects.filter(project_id=project_id)
    if not force:
        queryset = queryset.filter(Q(queued_at__isnull=True) | Q(queued_at__lt=stale))
    if not queryset.update(queued_at=now):
        return False  # a waiting task will see the latest rows
    from django_q.tasks import async_task

    options: dict[str, Any] = {"task_name": f"insight {project_id}"[:100]}
    cluster = similarity_settings.INSIGHT_CLUSTER or similarity_settings.QUEUE_CLUSTER
    if cluster:
        options["cluster"] = cluster
    async_task(INSIGHT_TASK, project_id, q_options=options)
    logger.info("Queued insight for scope %s", project_id)
    return True


def run_insight(project_id: str, budget_seconds: float | None = None) -> dict[str, Any]:
    """The task: one budgeted step of the scope's analysis, then its continuation."""
    project_id = str(project_id)
    InsightState.objects.filter(project_id=project_id).update(queued_at=None)
    budget = similarity_settings.INSIGHT_TASK_SECONDS if budget_seconds is None else budget_seconds
    outcome = insight.analyse_project(project_id, budget_seconds=float(budget))
    if outcome.get("more"):
        request_insight(project_id)
    return outcome


def run_until_done(project_id: str, budget_seconds: float | None = None,
                   max_steps: int = 1000) -> list[dict[str, Any]]:
    """Run the task's steps in this process until nothing is left (commands, tests)."""
    outcomes = []
    for _step in range(max_steps):
        outcome = run_insight(project_id, budget_seconds)
        outcomes.append(outcome)
        if not outcome.get("more"):
            break
    return outcomes
