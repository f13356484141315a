"""Bring the database up to date before a command that reads the site's tables.

On the embedded PostgreSQL (a development or demo database) migrations are applied on
the spot, so ``manage.py similarity_status`` works on a fresh checkout. On a server named
by ``DATABASE_URL`` nothing is changed behind the operator's back: the command stops
with the one line to run.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def pending_migrations() -> int:
    """How many migrations the database lacks."""
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def prepare_database(out: TextIO) -> None:
    """Migrate a new embedded database (and create the cache table), or explain and exit."""
    try:
        pending = pending_migrations()
    except Exception as exc:
        out.write(f"Cannot reach the database: {exc}\n")
        sys.exit(1)
    if pending:
        if os.environ.get("DATABASE_URL"):
            out.write(
                f"The database at DATABASE_URL lacks {pending} migration(s). Run "
                "`python manage.py migrate` first (or `python manage.py serve`, which does).\n"
            )
            sys.exit(1)
        out.write(f"First run on this database: applying {pending} migration(s)…\n")
        call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
