"""The scope's stored neighbour lists: read in one binary COPY, written in one upsert.

Lists hold our embedding row ids (always int64) and are mapped to the host's assets on
read, so any host key type works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from similarity.insight.neighbours import FINGERPRINT_TOLERANCE, K, scores
from similarity.models import Embedding, Neighbours


@dataclass
class Stored:
    ids: np.ndarray  # embedding row ids with a stored list, ascending
    fingerprints: np.ndarray
    neighbour_ids: np.ndarray  # (m, K), -1 padded
    similarities: np.ndarray  # (m, K), -inf padded


def load_stored(project_id: str, model_key: str) -> Stored:
    """The scope's stored lists, in one binary COPY parsed straight into NumPy.

    Lists are padded to K in SQL, so every record has the same size (the ORM took 2 s for
    100,000 lists here, most of it building Python lists).
    """
    table = Neighbours._meta.db_table
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        padded = (
            "(neighbour_ids || array_fill(-1::int8, ARRAY[GREATEST(0, %s - "
            "cardinality(neighbour_ids))]))[1:%s], "
            "(similarities || array_fill('-Infinity'::float8, ARRAY[GREATEST(0, %s - "
            "cardinality(similarities))]))[1:%s]"
        )
        sql = f"COPY (SELECT embedding_id, fingerprint, {padded} FROM {table} "  # noqa: S608
        query = cursor.mogrify(
            sql + "WHERE project_id = %s AND model_key = %s ORDER BY embedding_id) "
            "TO STDOUT (FORMAT BINARY)",
            [K, K, K, K, project_id, model_key],
        )
        with cursor.copy(query) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
    # Binary COPY: 19-byte header, 2-byte trailer; per row an int16 field count, then each
    # field as int32 length + value; a 1-d array is 5 int32 (ndim, flags, element type,
    # length, lower bound) then int32 length + value per element. All big-endian.
    record = np.dtype([
        ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("fp_len", ">i4"), ("fp", ">f8"),
        ("nb_len", ">i4"), ("nb_head", ">i4", (5,)), ("nb", [("len", ">i4"), ("v", ">i8")], (K,)),
        ("sm_len", ">i4"), ("sm_head", ">i4", (5,)), ("sm", [("len", ">i4"), ("v", ">f8")], (K,)),
    ])
    body = data[19:-2]
    rows = np.frombuffer(body, dtype=record) if body else np.zeros(0, dtype=record)
    return Stored(
        ids=rows["id"].astype(np.int64),
        fingerprints=rows["fp"].astype(np.float64),
        neighbour_ids=rows["nb"]["v"].astype(np.int64).reshape(-1, K),
        similarities=rows["sm"]["v"].astype(np.float32).reshape(-1, K),
    )


@dataclass
class StoredMeta:
    ids: np.ndarray  # embedding row ids with a stored list, ascending
    fingerprints: np.ndarray
    kth: np.ndarray  # similarity of each list's k-th neighbour (-2: a short list)


def load_meta(project_id: str, model_key: str) -> StoredMeta:
    """Row ids, fingerprints and k-th similarities of the scope's lists (not the lists):
    all an incremental pass needs for every row. One bytea built by the server (24 bytes
    a row): a COPY hands each row to Python as its own message, 0.9 s at 100,000 here."""
    table = Neighbours._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(int8send(embedding_id) || float8send(fingerprint) || "  # noqa: S608
            f"float8send(kth), ''::bytea ORDER BY embedding_id) FROM {table} "
            "WHERE project_id = %s AND model_key = %s", [project_id, model_key])
        blob = cursor.fetchone()[0]
    record = np.dtype([("id", ">i8"), ("fp", ">f8"), ("kth", ">f8")])
    rows = np.frombuffer(bytes(blob), dtype=record) if blob else np.zeros(0, dtype=record)
    return StoredMeta(ids=rows["id"].astype(np.int64), fingerprints=rows["fp"].astype(np.float64),
                      kth=rows["kth"].astype(np.float32))


def load_lists(project_id: str, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stored lists of some rows, padded to K (-1 / -inf), in ``row_ids`` order."""
    out_ids = np.full((len(row_ids), K), -1, dtype=np.int64)
    out_sims = np.full((len(row_ids), K), -np.inf, dtype=np.float32)
    where = {row: i for i, row in enumerate(row_ids.tolist())}
    for start in range(0, len(row_ids), 10_000):
        chunk = row_ids[start:start + 10_000].tolist()
        for row, nb, sims in Neighbours.objects.filter(
            project_id=project_id, embedding_id__in=chunk,
        ).values_list("embedding_id", "neighbour_ids", "similarities"):
            i = where[row]
            out_ids[i, :len(nb)] = nb[:K]
            out_sims[i, :len(sims)] = sims[:K]
    return out_ids, out_sims


def naming(project_id: str, model_key: str, row_ids: np.ndarray) -> np.ndarray:
    """Rows whose list names any of ``row_ids`` (one scan of the scope's arrays in SQL)."""
    if not len(row_ids):
        return np.zeros(0, dtype=np.int64)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT embedding_id FROM {Neighbours._meta.db_table} "  # noqa: S608
            "WHERE project_id = %s AND model_key = %s AND neighbour_ids && %s::bigint[]",
            [project_id, model_key, row_ids.tolist()])
        return np.array(sorted(row for (row,) in cursor.fetchall()), dtype=np.int64)


_COLUMNS = ("embedding_id", "project_id", "model_key", "neighbour_ids", "similarities",
            "score", "kth", "fingerprint", "file_hash")


def write_lists(
    project_id: str,
    model_key: str,
    row_ids: np.ndarray,
    nb_ids: np.ndarray,
    nb_sims: np.ndarray,
    row_fingerprints: np.ndarray,
) -> int:
    """Upsert neighbour lists (COPY into a temporary table, one INSERT … ON CONFLICT).

    A row's file facts (hash, size, dimensions) survive when its vector is unchanged.
    Rows whose embedding was deleted meanwhile are skipped (the next run sees them gone).
    """
    if not len(row_ids):
        return 0
    score, kth = scores(nb_sims)
    table = Neighbours._meta.db_table
    embeddings = Embedding._meta.db_table
    keep = ", ".join(
        f"{name} = CASE WHEN abs({table}.fingerprint - EXCLUDED.fingerprint) <= "
        f"{FINGERPRINT_TOLERANCE} THEN {table}.{name} ELSE EXCLUDED.{name} END"
        for name in ("file_hash", "file_size", "width", "height", "map_x", "map_y")
    )
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[1:-1])
    columns = ", ".join(_COLUMNS)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS _insight_rows "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            raw = cursor.cursor
            with raw.copy(f"COPY _insight_rows ({columns}) FROM STDIN") as copy:
                for i, row_id in enumerate(row_ids.tolist()):
                    valid = nb_ids[i] >= 0
                    copy.write_row((
                        row_id, project_id, model_key,
                        nb_ids[i][valid].tolist(),
                        [round(float(s), 6) for s in nb_sims[i][valid]],
                        None if np.isnan(score[i]) else float(score[i]),
                        float(kth[i]), float(row_fingerprints[i]), "",
                    ))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _insight_rows r "  # noqa: S608
                f"WHERE EXISTS (SELECT 1 FROM {embeddings} e WHERE e.id = r.embedding_id) "
                f"ON CONFLICT (embedding_id) DO UPDATE SET {keep}, {updates}"
            )
            written = cursor.rowcount
            cursor.execute("TRUNCATE _insight_rows")
    return written
