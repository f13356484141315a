"""The insight stage's own django-q2 task: budgeted, deduplicated per scope, resumable.

Why its own task: a full neighbour build of a big project takes minutes, which would hold
an embedding worker (and could pass Q_CLUSTER's timeout) if it ran inside the embedding
task. Instead, when embedding leaves a scope ready (``embedding.signals.project_ready``)
and in the sweep, ``request_insight`` queues one ``run_insight`` task per scope unless one
is already waiting (``InsightState.queued_at``, the way embedding tasks are deduplicated).
Each task works for ``INSIGHT_TASK_SECONDS`` and, if work is left, queues its own
continuation; progress is saved as it goes (``similarity.insight.stage``), so a worker
killed mid-task leaves a cursor the redelivered task or the sweep's task resumes from.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.insight.stage import analyse_project, get_state, is_current
from similarity.models import DuplicateMark, Embedding, InsightState, Neighbours, ProjectReadiness
from similarity.vectors import exact

logger = logging.getLogger(__name__)

INSIGHT_TASK = "similarity.insight_tasks.run_insight"


def request_insight(project_id: str, *, force: bool = False) -> bool:
    """Queue one insight task for the scope unless one is already waiting."""
    project_id = str(project_id)
    get_state(project_id)
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
    try:
        async_task(INSIGHT_TASK, project_id, q_options=options)
    except Exception:
        # Nothing was queued: a mark left behind would stall the scope for PENDING_TIMEOUT
        InsightState.objects.filter(project_id=project_id, queued_at=now).update(queued_at=None)
        raise
    logger.info("Queued insight for scope %s", project_id)
    return True


def gave_up(state: InsightState, ready: ProjectReadiness) -> bool:
    """Whether the scope failed INSIGHT_MAX_ATTEMPTS times on these very images."""
    return (state.attempts >= similarity_settings.INSIGHT_MAX_ATTEMPTS
            and state.attempts_version == ready.updated)


def run_insight(project_id: str, budget_seconds: float | None = None) -> dict[str, Any]:
    """The task: one budgeted pass of the scope's analysis, then its continuation.

    The attempt is counted before the pass and cleared after it, so a pass that raises or
    whose worker is killed (out of memory) counts; after INSIGHT_MAX_ATTEMPTS on the same
    images the task stops, instead of being re-queued by every sweep for ever.
    """
    project_id = str(project_id)
    state = get_state(project_id)
    ready = readiness.get_readiness(project_id)
    InsightState.objects.filter(project_id=project_id).update(queued_at=None)
    if gave_up(state, ready):
        logger.warning("Insight for scope %s failed %d times on these images; not retried "
                       "until they change: %s", project_id, state.attempts, state.error)
        return {"project": project_id, "skipped": "gave up", "error": state.error}
    attempts = state.attempts + 1 if state.attempts_version == ready.updated else 1
    InsightState.objects.filter(pk=state.pk).update(attempts=attempts,
                                                    attempts_version=ready.updated)
    budget = similarity_settings.INSIGHT_TASK_SECONDS if budget_seconds is None else budget_seconds
    try:
        outcome = analyse_project(project_id, budget_seconds=float(budget))
    except exact.MatrixTooLarge as exc:
        # Refused before loading anything: cheap to ask again, so the next sweep retries
        # (and succeeds once EXACT_CACHE_MB is raised); not counted as a crash.
        InsightState.objects.filter(pk=state.pk).update(attempts=state.attempts,
                                                        error=str(exc))
        logger.warning("Insight for scope %s not run: %s", project_id, exc)
        return {"project": project_id, "skipped": "too large", "error": str(exc)}
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        InsightState.objects.filter(pk=state.pk).update(error=reason[:2000])
        logger.exception("Insight for scope %s failed (attempt %d of %d)", project_id,
                         attempts, similarity_settings.INSIGHT_MAX_ATTEMPTS)
        raise
    if "skipped" in outcome:  # did nothing (another pass runs, embeddings pending): uncounted
        InsightState.objects.filter(pk=state.pk).update(attempts=attempts - 1)
    else:
        InsightState.objects.filter(pk=state.pk).update(attempts=0, error="")
    if outcome.get("more"):
        request_insight(project_id)
    return outcome


def run_until_done(project_id: str, budget_seconds: float | None = None,
                   max_steps: int = 1000) -> list[dict[str, Any]]:
    """Run the task's passes in this process until nothing is left (commands, tests)."""
    outcomes = []
    for _step in range(max_steps):
        outcome = run_insight(project_id, budget_seconds)
        outcomes.append(outcome)
        if not outcome.get("more"):
            break
    return outcomes


def queue_after_embedding(project_id: str) -> None:
    """Queue the insight task once embedding left a scope ready (its own budgeted task,
    so embedding workers are never held by it); never raises."""
    try:
        request_insight(project_id)
    except Exception:
        logger.exception("Could not queue insight for scope %s; the sweep retries it",
                         project_id)


def delete_orphans() -> int:
    """Lists and marks of embedding rows that no longer exist (no cascade: see models)."""
    rows = Embedding.objects.filter(pk=OuterRef("embedding_id"))
    # a ready scope's own task removes its orphans, and needs them to know which of its
    # lists name a deleted image (it does not read every list)
    ready = ProjectReadiness.objects.filter(state=ProjectReadiness.State.READY)
    deleted = Neighbours.objects.filter(~Exists(rows)).exclude(
        project_id__in=ready.values("project_id")).delete()[0]
    return deleted + DuplicateMark.objects.filter(~Exists(rows)).delete()[0]


def sweep() -> list[str]:
    """Queue the insight task for ready scopes whose lists are older than their embeddings
    (deletes and moves change the rows without an embedding task) or whose task died."""
    delete_orphans()
    states = {s.project_id: s for s in InsightState.objects.all()}
    queued = []
    for ready in ProjectReadiness.objects.filter(state=ProjectReadiness.State.READY):
        state = states.get(ready.project_id)
        if state is not None and gave_up(state, ready):
            continue  # its images must change first (the error is on its page)
        if state is None or not is_current(state, ready):
            queue_after_embedding(ready.project_id)  # queued once per scope
            queued.append(ready.project_id)
    return queued
