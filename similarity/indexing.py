"""Per-project partial HNSW indexes for big projects.

An HNSW scan returns at most ``hnsw.ef_search`` rows and filters after the scan, so one
table-wide index silently loses rows for a project-filtered top-100. An index that holds
only one project's rows for one model has nothing to filter away. The vector column has
no fixed dimension, so each index casts it to the model's (``vector::halfvec(384)``);
search uses that same expression to reach the index. Small projects get no index: an
exact scan through the ``(project_id, model_key, status)`` btree is fast and exact.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import connection

from similarity.conf import similarity_settings
from similarity.models import Embedding, ProjectReadiness

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


def index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


def project_dims(project_id: str, model_key: str) -> int | None:
    return (
        Embedding.objects.filter(
            project_id=project_id, model_key=model_key, status=Embedding.Status.DONE
        )
        .values_list("dims", flat=True)
        .first()
    )


def ensure_project_index(project_id: str, model_key: str, *, force: bool = False) -> bool:
    """Build the project's HNSW index if it is big enough; drop other models' indexes.

    Outside a transaction (the worker, after a project becomes ready) the index is built
    CONCURRENTLY, so searches and uploads go on meanwhile. Returns whether it exists.
    """
    project_id = str(project_id)
    done = Embedding.objects.filter(
        project_id=project_id, model_key=model_key, status=Embedding.Status.DONE
    ).count()
    name = index_name(project_id, model_key)
    if done <= similarity_settings.EXACT_SEARCH_MAX_ROWS and not force:
        return index_exists(name)
    dims = project_dims(project_id, model_key)
    if dims is None:
        return False
    if not index_exists(name):
        table = Embedding._meta.db_table
        m = int(similarity_settings.HNSW_M)
        ef = int(similarity_settings.HNSW_EF_CONSTRUCTION)
        with connection.cursor() as cursor:
            # Identifiers are generated (hex digests); the scope and model key are literals
            # quoted by the driver.
            literal = _literal(cursor, model_key)
            scope = _literal(cursor, project_id)
            cursor.execute(
                f'CREATE INDEX {_concurrently()} IF NOT EXISTS "{name}" ON "{table}" '
                f"USING hnsw ((vector::halfvec({int(dims)})) halfvec_cosine_ops) "
                f"WITH (m = {m}, ef_construction = {ef}) "
                f"WHERE project_id = {scope} AND model_key = {literal}"
            )
        logger.info("Built HNSW index %s over %d vectors of project %s", name, done, project_id)
    drop_other_indexes(project_id, keep=name)
    ProjectReadiness.objects.filter(project_id=project_id).update(indexed_model_key=model_key)
    return True


def _literal(cursor, value: str) -> str:
    literal = cursor.mogrify("%s", [value])
    return literal.decode() if isinstance(literal, bytes) else literal


def drop_other_indexes(project_id: str, *, keep: str | None = None) -> list[str]:
    prefix = _index_prefix(project_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", [prefix.replace("_", r"\_") + "%"]
        )
        names = [row[0] for row in cursor.fetchall() if row[0] != keep]
        for name in names:
            cursor.execute(f'DROP INDEX {_concurrently()} IF EXISTS "{name}"')
    if keep is None:
        ProjectReadiness.objects.filter(project_id=project_id).update(indexed_model_key="")
    return names
