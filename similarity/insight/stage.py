"""The insight stage of one scope: a pass of explicit steps, one pass at a time.

A pass brings the scope's neighbour lists, file facts and map up to date, as far as its
time budget allows (``budget_seconds``; the task then queues its continuation). Its steps
run in order, each either going on or ending the pass with an outcome:

1. wait while the embeddings are still being computed (lists over a half-embedded scope
   would be rebuilt moments later anyway);
2. stop when the stored analysis is current;
3. read the scope's vectors (the exact-search cache) and settle a model change or an
   emptied scope;
4. plan: an incremental pass (new and re-embedded images get lists, the others take in
   the new ones nearer than their k-th neighbour) or a full build;
5. go on with a full build from its cursor, block by block;
6. hash new files (byte-identical duplicates);
7. place new images on the map;
8. record the analysis as ready and announce it once per embedding episode.

Progress lives in ``InsightState`` (a full build's cursor; lists, hashes and positions
already written), so a continuation, or a task redelivered after its worker was killed,
resumes instead of starting over. Passes take a per-scope advisory lock: two workers never
analyse one scope at once (an older pass could overwrite a newer one's lists and record
the newer version).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from similarity.embedding import notifications, readiness
from similarity.embedding.notifications import scope_tag
from similarity.embedding.readiness import batch_key
from similarity.host.links import insight_url
from similarity.insight import map as project_map
from similarity.insight import neighbours, storage
from similarity.insight.files import hash_missing_files
from similarity.insight.neighbours import FINGERPRINT_TOLERANCE, fingerprints
from similarity.locks import advisory_lock
from similarity.models import Embedding, InsightState, Neighbours, Notification, ProjectReadiness
from similarity.vectors import exact

logger = logging.getLogger(__name__)

#: Above this share of new images a full (budgeted, resumable) rebuild replaces an
#: incremental pass: an incremental pass runs in one task, and its cost (about 2 x new x
#: all products) stays a fraction of a full build's (all x all / 2) below this share.
REBUILD_SHARE = 0.1
LOCK_NAMESPACE = "similarity-insight"

State = InsightState.State


def get_state(project_id: str) -> InsightState:
    return InsightState.objects.get_or_create(project_id=str(project_id))[0]


def _set(record: InsightState, **fields: Any) -> None:
    changed = [name for name, value in fields.items() if getattr(record, name) != value]
    for name in changed:
        setattr(record, name, fields[name])
    if changed:
        record.save(update_fields=[*changed, "updated"])


def is_current(state: InsightState, ready: ProjectReadiness) -> bool:
    return (
        ready.state == ProjectReadiness.State.READY
        and state.state == State.READY
        and state.version == ready.updated
        and state.model_key == ready.active_model_key
        and state.build_cursor is None
        and state.fresh_since is None
    )


_Y2K = datetime(2000, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """A time as the exact cache's ``updated`` values are: µs since 2000-01-01 UTC."""
    return int((moment - _Y2K).total_seconds() * 1_000_000)


# --- one pass ------------------------------------------------------------------------------


@dataclass
class Pass:
    """What one pass read and did; its steps share it."""

    project_id: str
    ready: ProjectReadiness
    state: InsightState
    started: float
    deadline: float
    hash_files: bool
    outcome: dict[str, Any] = field(default_factory=dict)
    matrix: exact.Matrix | None = None
    fps: np.ndarray | None = None

    @property
    def key(self) -> str:
        return self.ready.active_model_key

    @property
    def version(self) -> datetime:
        return self.ready.updated

    @property
    def ids(self) -> np.ndarray:
        return self.matrix.ids

    @property
    def vectors(self) -> np.ndarray:
        return self.matrix.vectors

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def more(self) -> dict[str, Any]:
        """End the pass with work left: the task queues its continuation."""
        self.outcome["more"] = True
        self.outcome["seconds"] = time.monotonic() - self.started
        return self.outcome


#: A step answers None to go on, or the pass's outcome to end it.
Step = Callable[[Pass], dict[str, Any] | None]


def wait_for_embeddings(run: Pass) -> dict[str, Any] | None:
    if run.ready.state == ProjectReadiness.State.READY:
        return None
    state = run.state
    _set(state, state=State.WAITING, total=run.ready.total,
         analysed=state.analysed if state.build_cursor is not None else 0)
    return {"project": run.project_id, "skipped": "embeddings not ready"}


def stop_when_current(run: Pass) -> dict[str, Any] | None:
    if is_current(run.state, run.ready):
        return {"project": run.project_id, "skipped": "up to date"}
    return None


def read_vectors(run: Pass) -> dict[str, Any] | None:
    """The scope's unit vectors of the serving model; a model change restarts the
    analysis, an emptied scope ends it."""
    state, key = run.state, run.key
    dims = (
        Embedding.objects.filter(project_id=run.project_id, model_key=key,
                                 status=Embedding.Status.DONE)
        .values_list("dims", flat=True).first()
    )
    if state.model_key and state.model_key != key:
        _set(state, build_cursor=None, fresh_since=None)
    Neighbours.objects.filter(project_id=run.project_id).exclude(model_key=key).delete()
    if dims is None:
        Neighbours.objects.filter(project_id=run.project_id).delete()
        _set(state, state=State.READY, model_key=key, version=run.version, total=0, analysed=0,
             complete=True, build_cursor=None, fresh_since=None)
        return {"project": run.project_id, "rows": 0}
    run.matrix = exact.get_matrix(run.project_id, key, int(dims), ("insight", run.version))
    run.fps = fingerprints(run.vectors)
    run.outcome = {"project": run.project_id, "rows": len(run.ids), "full": False,
                   "recomputed": 0, "written": 0, "hashed": 0}
    return None


def plan_pass(run: Pass) -> dict[str, Any] | None:
    """Unless a full build is under way: run an incremental pass, or start a full build
    when that is cheaper (or nothing is stored yet)."""
    state, n = run.state, len(run.ids)
    if state.build_cursor is not None:
        return None
    plan = _plan(storage.load_meta(run.project_id, run.key), run.ids, run.fps, run.matrix, state)
    if plan is None:
        _set(state, state=State.ANALYSING, total=n, analysed=0, model_key=run.key,
             episode=state.episode + 1, build_cursor=-1, pass_version=run.version,
             pass_started=run.matrix.as_of, fresh_since=None)
        return None
    _set(state, state=State.ANALYSING, total=n, model_key=run.key,
         analysed=min(state.analysed, n) if state.complete else 0)
    run.outcome.update(_incremental(run.project_id, run.key, plan, run.ids, run.vectors, run.fps))
    _set(state, fresh_since=None, pass_started=run.matrix.as_of)
    return None


def continue_full_build(run: Pass) -> dict[str, Any] | None:
    """The next blocks of a full build, from its cursor, until done or out of time."""
    state = run.state
    if state.build_cursor is None:
        return None
    run.outcome["full"] = True
    _set(state, state=State.ANALYSING, total=len(run.ids), model_key=run.key)
    finished = _full_build(run.project_id, run.key, state, run.ids, run.vectors, run.fps,
                           run.deadline)
    run.outcome["recomputed"] = run.outcome["written"] = finished
    if state.build_cursor is not None:
        return run.more()
    _delete_gone(run.project_id, run.key, run.ids)
    if state.pass_version != run.version:
        # Images arrived while the build spanned tasks: lists written before them may
        # lack them. The next pass merges every row changed since the build began.
        _set(state, fresh_since=state.pass_started - timedelta(seconds=exact.RECENT_MARGIN),
             complete=True)
        return run.more()
    return None


def hash_new_files(run: Pass) -> dict[str, Any] | None:
    # Each step makes progress: the deadline only ends the pass after some work was done.
    if run.outcome["written"] and run.out_of_time():
        return run.more()
    if run.hash_files:
        run.outcome["hashed"], done = hash_missing_files(run.project_id, run.key,
                                                         deadline=run.deadline)
        if not done:
            return run.more()
    if (run.outcome["written"] or run.outcome["hashed"]) and run.out_of_time():
        return run.more()
    return None


def place_on_map(run: Pass) -> dict[str, Any] | None:
    run.outcome["mapped"] = project_map.update_map(run.project_id, run.key, run.ids, run.vectors)
    return None


def finish(run: Pass) -> dict[str, Any] | None:
    elapsed = time.monotonic() - run.started
    state, outcome = run.state, run.outcome
    _set(state, state=State.READY, analysed=len(run.ids), version=run.version, complete=True,
         seconds=round(elapsed, 3), build_cursor=None)
    _announce(run.project_id, state, run.ready)
    logger.info("Insight for scope %s: %d images, %d lists recomputed, %d written, %d files "
                "hashed in %.2f s%s", run.project_id, outcome["rows"], outcome["recomputed"],
                outcome["written"], outcome["hashed"], elapsed,
                " (full build)" if outcome["full"] else "")
    outcome["seconds"] = elapsed
    if readiness.get_readiness(run.project_id).updated != run.version:
        outcome["more"] = True  # rows changed during the pass: the next one takes them in
    return outcome


STEPS: tuple[Step, ...] = (wait_for_embeddings, stop_when_current, read_vectors, plan_pass,
                           continue_full_build, hash_new_files, place_on_map, finish)


def analyse_project(
    project_id: str, *, hash_files: bool = True, budget_seconds: float | None = None,
) -> dict[str, Any]:
    """One pass of the scope's analysis (the module doc lists its steps).

    What the worker's insight task runs, ``budget_seconds`` at a time: when the budget is
    spent the outcome says ``more`` and the caller queues a continuation. A pass that
    finds another one running on the scope does nothing (``skipped``): the running pass
    takes in what changed, or says ``more`` when rows changed while it ran.
    """
    project_id = str(project_id)
    with advisory_lock(LOCK_NAMESPACE, project_id) as taken:
        if not taken:
            return {"project": project_id, "skipped": "another pass is running"}
        started = time.monotonic()
        run = Pass(project_id=project_id, ready=readiness.get_readiness(project_id),
                   state=get_state(project_id), started=started,
                   deadline=started + budget_seconds if budget_seconds is not None
                   else float("inf"), hash_files=hash_files)
        for step in STEPS:
            outcome = step(run)
            if outcome is not None:
                return outcome
    raise AssertionError("finish always ends the pass")  # pragma: no cover


# --- the pieces of a pass ----------------------------------------------------------------


@dataclass
class Plan:
    """An incremental pass: which lists to recompute and which to merge new images into."""

    added: np.ndarray  # positions of rows that get a full list (new, re-embedded, fresh)
    kept_positions: np.ndarray  # positions of rows whose stored list is kept
    kept_kth: np.ndarray  # their k-th similarities (-2: a short list)
    gone: np.ndarray  # row ids with a stored list that left the scope
    stale: np.ndarray  # row ids no kept list may name: gone, re-embedded or fresh


def _plan(stored: storage.StoredMeta, ids: np.ndarray, fps: np.ndarray, matrix: exact.Matrix,
          state: InsightState) -> Plan | None:
    """What an incremental pass must do, or None when a full build is cheaper."""
    n = len(ids)
    position = np.minimum(np.searchsorted(ids, stored.ids), max(n - 1, 0))
    present = (ids[position] == stored.ids) if n else np.zeros(len(stored.ids), bool)
    same = present & np.isclose(fps[position], stored.fingerprints, rtol=0,
                                atol=FINGERPRINT_TOLERANCE)
    if state.fresh_since is not None and matrix.updated is not None:
        # rows that changed while a full build spanned tasks: merge them again
        fresh = np.zeros(n, dtype=bool)
        fresh[matrix.updated >= _micros(state.fresh_since)] = True
        same &= ~fresh[position]
    kept_positions = position[same]
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept_positions] = True
    added = np.nonzero(~is_kept)[0]
    if len(kept_positions) == 0 or len(added) > REBUILD_SHARE * n:
        return None
    stale = stored.ids[~same]
    if state.pass_started is not None:
        # rows that moved away since the last pass (their list may already have been
        # rewritten in their new scope, so this scope's lists no longer show them)
        since = state.pass_started - timedelta(seconds=exact.RECENT_MARGIN)
        moved = np.fromiter(
            Embedding.objects.filter(updated__gte=since, status=Embedding.Status.DONE)
            .exclude(project_id=state.project_id).values_list("pk", flat=True), np.int64)
        stale = np.union1d(stale, moved)
    return Plan(added=added, kept_positions=kept_positions, kept_kth=stored.kth[same],
                gone=stored.ids[~present], stale=stale)


def _incremental(project_id: str, key: str, plan: Plan, ids: np.ndarray,
                 vectors: np.ndarray, fps: np.ndarray) -> dict[str, Any]:
    """New and re-embedded rows get full lists; lists naming a row that left are
    recomputed; every other list takes in the new rows nearer than its k-th.

    Reads only the lists it merges into: which lists name a stale row is asked of the
    database, and which lists a new row enters follows from their stored k-th similarity.
    """
    if len(plan.gone):  # deleted rows cascade; these moved to another scope
        Neighbours.objects.filter(embedding_id__in=plan.gone.tolist(),
                                  project_id=project_id).delete()
    added, kept_positions = plan.added, plan.kept_positions
    dirty = np.isin(ids[kept_positions], storage.naming(project_id, key, plan.stale))
    recompute = np.union1d(added, kept_positions[dirty])
    new_ids, new_sims = neighbours.top_k(vectors, ids, recompute)
    written = storage.write_lists(project_id, key, ids[recompute], new_ids, new_sims, fps[recompute])
    clean = ~dirty
    clean_positions = kept_positions[clean]
    if len(added) and len(clean_positions):
        best = neighbours.best_new_similarity(vectors, added)[clean_positions]
        # a short list (k-th stored as -2) takes any new image; a full one a nearer one
        enters = np.isfinite(best) & (best > plan.kept_kth[clean])
        if enters.any():
            rows = clean_positions[enters]
            old_ids, old_sims = storage.load_lists(project_id, ids[rows])
            cand_ids, cand_sims = neighbours.best_new_candidates(vectors, ids, added, rows=rows)
            merged_ids, merged_sims = neighbours.merge(old_ids, old_sims, cand_ids, cand_sims)
            written += storage.write_lists(project_id, key, ids[rows], merged_ids, merged_sims,
                                   fps[rows])
    return {"recomputed": len(recompute), "written": written}


def _full_build(project_id: str, key: str, state: InsightState, ids: np.ndarray,
                vectors: np.ndarray, fps: np.ndarray, deadline: float) -> int:
    """Lists for every row after the build's cursor, block by block, until done or the
    deadline; the cursor and "analysed" are saved after each block, so the next task
    (or a redelivered one) goes on from there. Returns the number of lists written."""
    start = int(np.searchsorted(ids, state.build_cursor, side="right"))
    written = 0

    def write_block(block: np.ndarray, block_ids: np.ndarray, block_sims: np.ndarray) -> None:
        nonlocal written
        storage.write_lists(project_id, key, ids[block], block_ids, block_sims, fps[block])
        written += len(block)
        _set(state, analysed=int(block[-1]) + 1, build_cursor=int(ids[block[-1]]))

    reached = neighbours.build_lists(vectors, ids, start, progress=write_block, deadline=deadline)
    if reached >= len(ids):
        _set(state, build_cursor=None, analysed=len(ids))
    return written


def _delete_gone(project_id: str, key: str, ids: np.ndarray) -> None:
    """Lists of rows that left the scope (moved away) while a full build ran."""
    stored = Neighbours.objects.filter(project_id=project_id, model_key=key)
    gone = np.setdiff1d(np.fromiter(stored.values_list("embedding_id", flat=True), np.int64),
                        ids)
    if len(gone):
        stored.filter(embedding_id__in=gone.tolist()).delete()


def _announce(project_id: str, state: InsightState, ready: ProjectReadiness) -> None:
    """"duplicates analysed", once per embedding episode of the scope, as one more part of
    that upload batch's notification ("25 images added · Similarity search is ready ·
    duplicates analysed"), unread again, with the duplicates page as its link unless the
    failed images hold it. An episode without one (vectors loaded another way) gets its own.

    The key names the readiness episode and the notification table's unique key makes it
    exactly-once even when two workers finish the same scope; later passes of the same
    episode (deletes, moves) stay silent.
    """
    episode = ready.episode
    if state.announced_episode > episode:  # it stores the episode announced, plus one
        return
    url = insight_url("duplicates", project_id) or ""
    part = ngettext("duplicates analysed (%(count)d image)", "duplicates analysed "
                    "(%(count)d images)", state.total) % {"count": state.total}
    if not notifications.extend(batch_key(project_id, episode), part, url=url):
        notifications.notify(
            project_id,
            _("Duplicates and outliers are ready: %(count)d images analysed") % {"count": state.total},
            level=Notification.Level.SUCCESS, url=url,
            key=f"insight:{scope_tag(project_id)}:{episode}",
        )
    _set(state, announced_episode=episode + 1)
