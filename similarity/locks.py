"""Advisory locks in PostgreSQL, for work that two processes must never do at once.

Session-level and taken with ``pg_try_advisory_lock``: a caller that does not get the
lock learns it at once and decides (skip, or let the holder finish), and a process that
dies releases its locks with its connection, so nothing is ever left locked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def lock_key(namespace: str, name: str) -> int:
    """A signed 64-bit key for ``namespace:name`` (scope ids may be any text)."""
    digest = hashlib.sha256(f"{namespace}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def advisory_lock(namespace: str, name: str) -> Iterator[bool]:
    """Hold the lock for the block if it is free; yields whether it was taken."""
    key = lock_key(namespace, str(name))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        taken = bool(cursor.fetchone()[0])
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
