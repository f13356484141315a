"""Per-project partial HNSW indexes for big projects, and the scan that reads one.

An HNSW scan returns at most ``hnsw.ef_search`` rows and filters after the scan, so one
table-wide index silently loses rows for a project-filtered top-100. An index that holds
only one project's rows for one model has nothing to filter away. The vector column has
no fixed dimension, so each index casts it to the model's (``vector::halfvec(384)``);
search uses that same expression to reach the index. Small projects get no index: an
exact scan through the ``(project_id, model_key, status)`` btree is fast and exact.

Lifecycle: an index is built once its project is ready on a model and big enough; other
models' indexes of the project are dropped only after it exists (so a model change keeps
the old index serving until the new one is built); an index whose project shrank to the
exact-scan size, emptied or was deleted is dropped (``ensure_project_index`` and the
sweep's ``prune_indexes``); an index left invalid by a killed ``CREATE INDEX
CONCURRENTLY`` never counts as existing: it is dropped and rebuilt. Builds take a
per-project advisory lock, so two workers never build (or drop) the same index at once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, HalfVectorField

from similarity.conf import similarity_settings
from similarity.locks import advisory_lock
from similarity.models import Embedding, ProjectReadiness
from similarity.vectors.math import halfvec
from similarity.vectors.model_keys import current_model_key, current_model_keys

logger = logging.getLogger(__name__)


def _concurrently() -> str:
    return "" if connection.in_atomic_block else "CONCURRENTLY"


def _index_prefix(project_id: str) -> str:
    project_id = str(project_id)
    # Scope ids may be UUIDs or arbitrary strings: the name carries a digest, not the id.
    return f"similarity_hnsw_p{hashlib.sha256(project_id.encode()).hexdigest()[:12]}_"


def index_name(project_id: str, model_key: str) -> str:
    digest = hashlib.sha256(model_key.encode()).hexdigest()[:10]
    return f"{_index_prefix(project_id)}{digest}"


def index_state(name: str) -> bool | None:
    """None if there is no such index, else whether it is valid (usable by the planner).

    A ``CREATE INDEX CONCURRENTLY`` that was killed or cancelled leaves an invalid index
    behind, which the planner never uses: counting it as existing would send search to a
    silent sequential scan forever.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def index_exists(name: str) -> bool:
    """Whether the index exists and is valid."""
    return bool(index_state(name))


def needs_index(project_id: str, model_key: str) -> bool:
    """Whether the project is big enough on this model for an HNSW index."""
    return done_rows(project_id, model_key) > similarity_settings.EXACT_SEARCH_MAX_ROWS


def done_rows(project_id: str, model_key: str) -> int:
    return Embedding.objects.filter(
        project_id=str(project_id), model_key=model_key, status=Embedding.Status.DONE
    ).count()


def project_lock(project_id: str) -> AbstractContextManager[bool]:
    """A session advisory lock on the project's indexes; yields whether it was taken."""
    return advisory_lock("similarity-index", str(project_id))


def drop_index(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX {_concurrently()} IF EXISTS "{name}"')


def project_dims(project_id: str, model_key: str) -> int | None:
    return (
        Embedding.objects.filter(
            project_id=project_id, model_key=model_key, status=Embedding.Status.DONE
        )
        .values_list("dims", flat=True)
        .first()
    )


def ensure_project_index(project_id: str, model_key: str, *, force: bool = False) -> bool:
    """Build the project's HNSW index if it is big enough; then drop other models' ones.

    Outside a transaction (the worker, after a project becomes ready) the index is built
    CONCURRENTLY, so searches and uploads go on meanwhile. A project at or below
    EXACT_SEARCH_MAX_ROWS (it shrank) loses its indexes: exact search serves it. Returns
    whether a valid index for ``model_key`` exists afterwards.
    """
    project_id = str(project_id)
    with project_lock(project_id) as taken:
        if not taken:  # another process is building or dropping this project's index
            return index_exists(index_name(project_id, model_key))
        return _ensure(project_id, model_key, force=force)


def _current_names(project_id: str, model_key: str) -> set[str]:
    """The project's index names that stay: the other models this site searches with
    (DINOv2's and the text model's indexes live side by side)."""
    return {index_name(project_id, key) for key in current_model_keys() if key != model_key}


def _ensure(project_id: str, model_key: str, *, force: bool) -> bool:
    done = done_rows(project_id, model_key)
    name = index_name(project_id, model_key)
    image_model = model_key == current_model_key()
    if done <= similarity_settings.EXACT_SEARCH_MAX_ROWS and not force:
        # it shrank, or never needed one: drop it (and old models' ones), keep the others'
        dropped = drop_other_indexes(project_id, keep=_current_names(project_id, model_key),
                                     clear=image_model)
        if dropped:
            logger.info("Project %s has %d vectors: dropped %s", project_id, done, dropped)
        return False
    dims = project_dims(project_id, model_key)
    if dims is None:
        return False
    state = index_state(name)
    if state is False:
        logger.warning("Index %s is invalid (an interrupted build): rebuilding it", name)
        drop_index(name)
    if not state:
        table = Embedding._meta.db_table
        m = int(similarity_settings.HNSW_M)
        ef = int(similarity_settings.HNSW_EF_CONSTRUCTION)
        memory_mb = build_memory_mb(done, int(dims), m)
        started = time.monotonic()
        with connection.cursor() as cursor:
            # Identifiers are generated (hex digests); the scope and model key are literals
            # quoted by the driver.
            literal = _literal(cursor, model_key)
            scope = _literal(cursor, project_id)
            # Session-level (CONCURRENTLY cannot run in a transaction), reset afterwards.
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)",
                           [f"{memory_mb}MB"])
            try:
                cursor.execute(
                    f'CREATE INDEX {_concurrently()} IF NOT EXISTS "{name}" ON "{table}" '
                    f"USING hnsw ((vector::halfvec({int(dims)})) halfvec_cosine_ops) "
                    f"WITH (m = {m}, ef_construction = {ef}) "
                    f"WHERE project_id = {scope} AND model_key = {literal}"
                )
            finally:
                cursor.execute("RESET maintenance_work_mem")
        logger.info("Built HNSW index %s over %d vectors of project %s in %.0f s (%d MB of "
                    "build memory)", name, done, project_id, time.monotonic() - started,
                    memory_mb)
    drop_other_indexes(project_id, keep={name, *_current_names(project_id, model_key)},
                       clear=False)
    if image_model:  # search uses the image model's index once this names it
        ProjectReadiness.objects.filter(project_id=project_id).update(
            indexed_model_key=model_key)
    return True


def build_memory_mb(rows: int, dims: int, m: int) -> int:
    """``maintenance_work_mem`` for one HNSW build: enough for the whole graph, capped.

    pgvector builds the graph in memory while it fits and then falls back to inserting
    on disk one element at a time, many times slower: with PostgreSQL's default 64 MB a
    million 384-d rows never finished here. The graph takes about the vector plus two
    neighbour lists per element; the estimate is padded by a quarter and capped by
    ``HNSW_BUILD_MEMORY_MB``, so small projects never ask for more than they need.
    """
    per_row = 2 * dims + 48 * m + 256
    needed = rows * per_row * 5 // 4 // (1024 * 1024) + 64
    return max(64, min(int(similarity_settings.HNSW_BUILD_MEMORY_MB), needed))


def _literal(cursor, value: str) -> str:
    literal = cursor.mogrify("%s", [value])
    return literal.decode() if isinstance(literal, bytes) else literal


def drop_other_indexes(project_id: str, *, keep: str | set[str] | None = None,
                       clear: bool | None = None) -> list[str]:
    """Drop the project's indexes except ``keep`` (a name or a set of names).

    ``clear`` empties the readiness' ``indexed_model_key`` (search then scans exactly);
    by default only when nothing is kept.
    """
    kept = {keep} if isinstance(keep, str) else set(keep or ())
    prefix = _index_prefix(project_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", [prefix.replace("_", r"\_") + "%"]
        )
        names = [row[0] for row in cursor.fetchall() if row[0] not in kept]
    for name in names:
        drop_index(name)
    if clear if clear is not None else keep is None:
        ProjectReadiness.objects.filter(project_id=project_id).update(indexed_model_key="")
    return names


@dataclass(frozen=True)
class ProjectIndex:
    name: str
    project_id: str | None  # None: the predicate could not be read back
    model_key: str | None
    valid: bool


_PREDICATE = {
    column: re.compile(rf"\(?{column}\)?(?:::text)? = '((?:[^']|'')*)'")
    for column in ("project_id", "model_key")
}


def _predicate_value(predicate: str, column: str) -> str | None:
    match = _PREDICATE[column].search(predicate or "")
    return None if match is None else match.group(1).replace("''", "'")


def project_indexes() -> list[ProjectIndex]:
    """Every per-project HNSW index, mapped back to its scope and model.

    The index name only carries digests, so the scope and model key are read back from
    the index's own predicate (``WHERE project_id = … AND model_key = …``).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid, pg_get_expr(i.indpred, i.indrelid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname LIKE %s",
            [r"similarity\_hnsw\_p%"],
        )
        rows = cursor.fetchall()
    return [
        ProjectIndex(name, _predicate_value(pred, "project_id"),
                     _predicate_value(pred, "model_key"), bool(valid))
        for name, valid, pred in rows
    ]


def prune_indexes() -> list[str]:
    """Drop indexes nothing needs any more (the sweep runs this).

    Dropped: indexes of scopes that shrank to exact-scan size or have no rows left for
    the index's model (emptied, deleted, or an old model whose rows were purged), and
    invalid indexes of interrupted builds (``ensure_project_index`` builds them again).
    Never an index whose project's lock is held: a build may be running.
    """
    dropped = []
    for index in project_indexes():
        if index.project_id is None or index.model_key is None:
            continue
        if index_name(index.project_id, index.model_key) != index.name:
            continue  # not one of ours after all
        with project_lock(index.project_id) as taken:
            if not taken:
                continue
            done = done_rows(index.project_id, index.model_key)
            if index.valid and done > similarity_settings.EXACT_SEARCH_MAX_ROWS:
                continue
            drop_index(index.name)
            dropped.append(index.name)
            ProjectReadiness.objects.filter(
                project_id=index.project_id, indexed_model_key=index.model_key
            ).update(indexed_model_key="")
            logger.info("Dropped index %s of project %s (%d vectors, %s)", index.name,
                        index.project_id, done, "valid" if index.valid else "invalid")
    return dropped


def scan(rows: QuerySet, vector: np.ndarray, limit: int) -> list[tuple[Any, float]]:
    """(asset id, cosine distance) of the nearest ``limit`` rows through the project's
    own index: the same cast expression as the index, ``hnsw.ef_search`` raised for this
    one statement (``SET LOCAL`` in its own transaction; a scan returns at most that many
    rows). Inside a caller's transaction (``ATOMIC_REQUESTS``, a test) ``SET LOCAL`` would
    last to its end, so the previous value is put back after the statement; a statement
    that fails rolls back to the savepoint, which undoes it as well."""
    expression = Cast("vector", HalfVectorField(dimensions=int(vector.shape[0])))
    ef_search = max(int(similarity_settings.HNSW_EF_SEARCH), limit)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search', true)")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        found = list(
            rows.annotate(distance=CosineDistance(expression, halfvec(vector)))
            .order_by("distance")
            .values_list("asset_id", "distance")[:limit]
        )
        if previous:  # None: pgvector's setting was not defined before this statement
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [previous])
    return found
