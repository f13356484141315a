"""The periodic sweep: a list of named repair steps, each guarded, timed and logged.

Signals and on-commit hooks follow almost everything at once; the sweep (a django-q2
schedule, every ``SWEEP_MINUTES``) repairs what they cannot see: host changes that fired
no signal, work a dead worker abandoned, leftovers of a model change, indexes nothing
needs, expired outside-image queries. Features above this layer add their own steps
(``register_step``, from ``SimilarityConfig.ready()``): the sweep knows them by name only.

One failing step is logged with its traceback and the others still run: a host whose
data trips one repair must not lose all the others every five minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.embedding.drift import repair_drift
from similarity.embedding.scheduling import create_missing_rows, request_embedding
from similarity.embedding.worker import purge_other_models
from similarity.models import Embedding, ProjectReadiness
from similarity.search.outside import purge_expired
from similarity.search.text import purge_expired as purge_expired_texts
from similarity.vectors import hnsw
from similarity.vectors.model_keys import current_model_key, current_model_keys

logger = logging.getLogger(__name__)

SWEEP_TASK = "similarity.tasks.sweep"
SCHEDULE_NAME = "similarity sweep"


@dataclass(frozen=True)
class Step:
    """One repair: ``run()`` answers counts, merged into the sweep's answer."""

    name: str
    run: Callable[[], dict[str, Any]]


def requeue_abandoned() -> dict[str, Any]:
    """Queue scopes with pending rows nobody holds a claim on (a worker died, a broker
    lost the task, an upload's enqueue failed)."""
    stuck = (
        Embedding.objects.filter(model_key__in=current_model_keys(),
                                 status=Embedding.Status.PENDING)
        .exclude(claimed_until__gt=timezone.now())
        .values_list("project_id", flat=True)
        .distinct()
    )
    requeued = [scope for scope in stuck if request_embedding(scope)]
    for scope in requeued:
        readiness.refresh(scope)
    return {"requeued": requeued}


def purge_replaced_models() -> dict[str, Any]:
    """Old models' rows of projects now served by the current model (a purge that was
    interrupted, or a project that became ready on a worker that died before purging)."""
    key = current_model_key()
    purged = 0
    scopes = Embedding.objects.exclude(model_key__in=current_model_keys()).values_list(
        "project_id", flat=True).distinct()
    for project_id in list(scopes):
        state = readiness.get_readiness(project_id)
        served = state.state == ProjectReadiness.State.READY and state.active_model_key == key
        if served and (state.indexed_model_key == key or not hnsw.needs_index(project_id, key)):
            purged += purge_other_models(project_id, key)
    return {"purged": purged}


CORE_STEPS = (
    Step("host changes", repair_drift),
    Step("missing rows", lambda: {"created": create_missing_rows()}),
    Step("abandoned work", requeue_abandoned),
    Step("replaced models", purge_replaced_models),
    Step("unneeded indexes", lambda: {"dropped_indexes": hnsw.prune_indexes()}),
    Step("expired outside images", lambda: {"query_images": purge_expired()}),
    Step("expired text queries", lambda: {"text_queries": purge_expired_texts()}),
)
_feature_steps: dict[str, Step] = {}


def register_step(name: str, run: Callable[[], dict[str, Any]]) -> None:
    """Add a feature's repair to every sweep, after the core steps (once per name)."""
    _feature_steps[name] = Step(name, run)


def steps() -> list[Step]:
    return [*CORE_STEPS, *_feature_steps.values()]


def _run(step: Step) -> dict[str, Any]:
    # In a transaction already (a test, a caller's atomic block), a failing statement
    # would abort everything after it: give each step its own savepoint. Outside one,
    # each statement commits on its own, which index builds and chunked purges need.
    if connection.in_atomic_block:
        with transaction.atomic():
            return step.run()
    return step.run()


def sweep() -> dict[str, Any]:
    """Run every step; answers their counts, ``failed`` (names of steps that raised) and
    ``seconds`` per step."""
    outcome: dict[str, Any] = {"failed": [], "seconds": {}}
    for step in steps():
        started = time.monotonic()
        try:
            counts = _run(step)
        except Exception:
            logger.exception("Sweep step %r failed; the other steps go on", step.name)
            outcome["failed"].append(step.name)
            counts = {}
        elapsed = time.monotonic() - started
        outcome["seconds"][step.name] = round(elapsed, 3)
        outcome.update(counts)
        if any(counts.values()):
            logger.info("Sweep step %r: %s in %.2f s", step.name, counts, elapsed)
        else:
            logger.debug("Sweep step %r: nothing to do (%.2f s)", step.name, elapsed)
    return outcome


def ensure_sweep_schedule() -> None:
    """Create (or update) the django-q2 schedule that runs the sweep."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": SWEEP_TASK,
            "schedule_type": Schedule.MINUTES,
            "minutes": similarity_settings.SWEEP_MINUTES,
            "repeats": -1,
        },
    )
