"""The production entry point: ``manage.py serve --production`` (issue 15, item 1).

It runs gunicorn with WhiteNoise under ``assetsite.settings_production`` plus the worker
clusters (here also an ALT_CLUSTERS one), against the test database. Pages, the login
page, a hashed static file with year-long cache headers and /healthz are fetched; then it
is stopped and no process it started may be left. A server that dies makes serve stop the
rest and exit non-zero; a busy port is refused with a readable message.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration

MARK = "ASSETSITE_PRODUCTION_TEST"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def marked(mark: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``mark`` (every child inherits it)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get(MARK) == mark and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def commands(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.Error:
            pass
    return lines


class Production:
    """``manage.py serve --production`` on a free port, its output in a file."""

    def __init__(self, settings, tmp_path: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mark = uuid.uuid4().hex
        self.log = tmp_path / "serve.log"
        env = {
            **os.environ,
            MARK: self.mark,
            "DJANGO_SETTINGS_MODULE": "tests.production_settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback: no proxy in front
            "ASSETSITE_DB_NAME": settings.DATABASES["default"]["NAME"],
            "ASSETSITE_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "ASSETSITE_STATIC_ROOT": str(tmp_path / "static"),
            "SIMILARITY_MODEL": os.environ["SIMILARITY_TEST_MODEL"],
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--production", "--port",
             str(self.port), "--workers", "2", "--threads", "2", *extra],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_serving(self) -> None:
        def serving() -> bool:
            assert self.process.poll() is None, f"serve exited:\n{self.output()[-3000:]}"
            return "Serving on" in self.output()

        wait_for(serving, timeout=120, interval=0.2, message="serve --production to listen")

    def assert_nothing_left(self) -> None:
        try:
            wait_for(lambda: not marked(self.mark), timeout=30, interval=0.2,
                     message="every process serve started to exit")
        except AssertionError:
            left = marked(self.mark)
            for process in left:
                try:
                    process.kill()
                except psutil.Error:
                    pass
            raise AssertionError(f"left behind: {commands(left)}\n{self.output()[-3000:]}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        for process in marked(self.mark):
            try:
                process.kill()
            except psutil.Error:
                pass


@pytest.fixture
def production(transactional_db, settings, tmp_path):
    started: list[Production] = []

    def start(*extra: str, port: int | None = None) -> Production:
        server = Production(settings, tmp_path, *extra, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_production_server_serves_pages_static_files_and_health(production):
    server = production()
    server.wait_serving()
    base = server.base
    # the web server and both worker clusters (the default one and the ALT_CLUSTERS one)
    running = commands(marked(server.mark))
    assert any("gunicorn" in line for line in running), running
    alt = [p for p in marked(server.mark) if p.environ().get("Q_CLUSTER_NAME") == "queries"]
    assert alt, f"the ALT_CLUSTERS cluster is not running: {running}"

    home = requests.get(f"{base}/", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and home.headers["Location"].startswith("/accounts/login/")
    assert home.headers["Server"] == "gunicorn"
    login = requests.get(f"{base}/accounts/login/", timeout=30)
    assert login.status_code == 200 and "Log in" in login.text
    missing = requests.get(f"{base}/no-such-page/", timeout=30)
    assert missing.status_code == 404 and "URLconf" not in missing.text  # DEBUG is off

    # a content-hashed static file from the page, served by WhiteNoise, cached for a year
    stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login.text)
    assert stylesheet, "static URLs carry content hashes (ManifestStaticFilesStorage)"
    static = requests.get(f"{base}{stylesheet.group(1)}", timeout=30,
                          headers={"Accept-Encoding": "gzip"})
    assert static.status_code == 200 and static.headers["Content-Type"].startswith("text/css")
    assert "max-age=315360000" in static.headers["Cache-Control"]
    assert "immutable" in static.headers["Cache-Control"]
    assert static.headers.get("Content-Encoding") == "gzip"  # the compressed copy
    assert requests.get(f"{base}/static/nothing-here.css", timeout=30).status_code == 404

    def healthy():
        response = requests.get(f"{base}/healthz", timeout=30)
        return response.json() if response.status_code == 200 else None

    health = wait_for(healthy, timeout=90, interval=0.5, message="/healthz to report ready")
    assert health["database"] == "ok" and len(health["clusters"]) >= 1

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.output()[-3000:]
    output = server.output()
    assert "Stopping the worker cluster (qcluster)" in output and "gunicorn" in output
    server.assert_nothing_left()


def test_a_dying_web_server_stops_everything_with_an_error(production):
    server = production("--no-collectstatic")
    server.wait_serving()
    master = next(p for p in marked(server.mark)
                  if "gunicorn" in " ".join(p.cmdline()) and p.ppid() == server.process.pid)
    master.kill()
    assert server.process.wait(timeout=60) == 1
    assert "The web server (gunicorn) exited (code -9); stopped the others" in server.output()
    server.assert_nothing_left()


def test_a_busy_port_is_refused_with_a_readable_message(production):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = production("--no-collectstatic", port=busy.getsockname()[1])
        assert server.process.wait(timeout=120) == 1
    assert re.search(r"CommandError: Cannot listen on 127\.0\.0\.1:\d+: Address already in use",
                     server.output()), server.output()[-3000:]
    server.assert_nothing_left()
