"""Start the whole site: database, migrations, demo data, worker clusters, web server.

``serve`` runs Django's development server; ``serve --production`` runs gunicorn (static
files through WhiteNoise, see ``assetsite.settings_production``) and no demo data. Both
supervise the same worker clusters: ``qcluster`` for Q_CLUSTER, plus one per name in
``Q_CLUSTER["ALT_CLUSTERS"]`` (started with ``Q_CLUSTER_NAME=<name>``, as django-q2
expects). One Ctrl-C (or SIGTERM) stops everything together; serve killed with SIGKILL
takes its children with it (parent-death signal); in production, a child that exits on
its own stops the others and serve exits non-zero, so the service manager restarts it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from assetsite.processes import start_child, stop_processes, wait_until_listening

#: How long the web server may take to accept connections (imports Django, forks).
WEB_START_SECONDS = 90


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cluster_names() -> list[str | None]:
    """The worker clusters serve runs: the default one (None), then each ALT_CLUSTERS name."""
    alternatives = (getattr(settings, "Q_CLUSTER", {}) or {}).get("ALT_CLUSTERS") or {}
    return [None, *alternatives]


def gunicorn_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    """gunicorn with threaded workers: a search answer waits on PostgreSQL and NumPy,
    which release the GIL, so threads serve several requests per process cheaply."""
    return [
        sys.executable, "-m", "gunicorn", "assetsite.wsgi:application",
        "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
        "--timeout", "120", "--graceful-timeout", "20", "--access-logfile", "-",
        # Idle keep-alive connections outlive a proxy's (60 s is common), so the proxy, not
        # gunicorn, closes them: no request races a server-side close (gthread keeps idle
        # connections in its poller, not in a thread). gunicorn's 2 s default cost 12
        # connection errors in 3,065 requests of bench/load.py.
        "--keep-alive", "75",
        # no control socket: its default path is per user, shared by every site on the host
        "--no-control-socket",
        # gunicorn's own proxy handling stays off: Django reads X-Forwarded-Proto itself
        # (SECURE_PROXY_SSL_HEADER), behind a proxy that sets it.
    ]


class Command(BaseCommand):
    help = "Run the site with its background workers on an embedded (or DATABASE_URL) PostgreSQL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not seed demo data.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start qcluster.")
        parser.add_argument(
            "--production", action="store_true",
            help="gunicorn instead of the development server, static files collected for "
                 "WhiteNoise, no demo data (use DJANGO_SETTINGS_MODULE="
                 "assetsite.settings_production).",
        )
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")),
            help="gunicorn worker processes (--production; default WEB_CONCURRENCY or 1: each "
                 "process keeps its own exact-search cache, see the README's figures).",
        )
        parser.add_argument("--threads", type=int, default=16,
                            help="threads per gunicorn worker (--production; default 16).")
        parser.add_argument("--no-collectstatic", action="store_true",
                            help="--production: static files were collected at deploy time.")
        parser.add_argument("--no-migrate", action="store_true",
                            help="Migrations are applied once at deploy time (several web "
                                 "machines must not migrate at the same time).")

    def handle(self, *args, **options):
        self._login_lines: list[str] = []
        self._check_database()
        if not options["production"]:
            self._remember_model()
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("createcachetable", verbosity=0)
            self.stdout.write(self.style.SUCCESS("Database ready, migrations applied."))
        if options["production"]:
            self._prepare_production(options)
        elif not options["no_demo"]:
            self._seed_demo()
        # SIGTERM behaves like Ctrl-C, so supervisors and tests stop every process. It is
        # in place before the children start, so no signal can leave an orphan behind.
        signal.signal(signal.SIGTERM, _interrupt)
        # Ctrl-C stops serve even when it was started from a shell that ignores SIGINT
        # (a background job in a script inherits SIG_IGN).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        children: list[tuple[str, subprocess.Popen]] = []
        failure = None
        try:
            if not options["no_worker"]:
                children += self._start_workers()
            if options["production"]:
                children.append(self._start_gunicorn(options))
                failure = self._supervise(children)
            else:
                address = f"{options['host']}:{options['port']}"
                self._print_login(f"http://{address}/")
                self.stdout.write(self.style.SUCCESS(f"Serving on http://{address}/ (Ctrl-C stops)"))
                call_command("runserver", address, use_reloader=False, use_threading=True,
                             skip_checks=True)
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C (or SIGTERM) must not abort stopping the children.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop(children)
        if failure:
            raise CommandError(failure)

    # --- start-up ---------------------------------------------------------------------

    def _check_database(self):
        db = settings.DATABASES["default"]
        embedded = f"embedded PostgreSQL ({db.get('PGDATA')})"
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else embedded
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT version()")
                version = cursor.fetchone()[0].split(" on ")[0]
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                has_vector = cursor.fetchone() is not None
        except Exception as exc:
            raise CommandError(f"Cannot reach the database ({where}): {exc}") from exc
        if not has_vector:
            raise CommandError(
                f"The PostgreSQL server ({where}) has no pgvector extension. Install pgvector "
                "0.8+ there, or unset DATABASE_URL to use the embedded PostgreSQL."
            )
        self.stdout.write(f"Using {version} with pgvector via {where}.")

    def _remember_model(self):
        """A model folder named in SIMILARITY_MODEL is remembered (var/similarity-model) for
        the next runs; a run without the variable says which model it uses and why."""
        from pathlib import Path

        memory = Path(getattr(settings, "MODEL_MEMORY", ""))
        if not memory.name:
            return
        given = os.environ.get("SIMILARITY_MODEL", "").strip()
        if given and Path(given).is_dir():
            folder = str(Path(given).resolve())
            memory.parent.mkdir(parents=True, exist_ok=True)
            if not memory.exists() or memory.read_text().strip() != folder:
                memory.write_text(folder + "\n")
            self.stdout.write(f"Model: {folder} (remembered in {memory} for the next runs; "
                              "delete that file to use the hub model again).")
        elif given:
            memory.unlink(missing_ok=True)  # a hub id named this time: no folder to come back to
        elif memory.exists():
            self.stdout.write(f"Model: {memory.read_text().strip()} (remembered in {memory} "
                              "from an earlier run; delete that file to use the hub model).")

    def _seed_demo(self):
        from assetsite.demo import seed_demo

        login = seed_demo(stdout=self.stdout)
        if login:
            self._login_lines = [f"Demo login: username {login[0]!r}, password {login[1]!r}",
                                 "(shown once; change it in the admin)"]
        elif get_user_model().objects.filter(username="demo").exists():
            self._login_lines = [
                "Demo data already there: log in as 'demo' with the password",
                "printed on the first run (`python manage.py changepassword demo`",
                "sets a new one).",
            ]

    def _print_login(self, url: str) -> None:
        """The demo login, boxed, after the workers' start-up lines (just before "Serving
        on"), so it is not lost among them."""
        if not self._login_lines:
            return
        lines = [f"Open {url}", *self._login_lines]
        width = max(len(line) for line in lines)
        border = "+" + "-" * (width + 2) + "+"
        box = [border, *(f"| {line.ljust(width)} |" for line in lines), border]
        self.stdout.write(self.style.WARNING("\n".join(box)))

    def _prepare_production(self, options):
        if settings.DEBUG:
            self.stdout.write(self.style.WARNING(
                "DEBUG is on: --production is meant for DJANGO_SETTINGS_MODULE="
                "assetsite.settings_production (DEBUG off, secure cookies, WhiteNoise)."
            ))
        if "whitenoise.middleware.WhiteNoiseMiddleware" not in settings.MIDDLEWARE:
            self.stdout.write(self.style.WARNING(
                "WhiteNoise is not in MIDDLEWARE: gunicorn will not serve /static/ (serve it "
                "from your proxy, or use assetsite.settings_production)."
            ))
        if not options["no_collectstatic"]:
            started = time.monotonic()
            call_command("collectstatic", interactive=False, verbosity=0)
            self.stdout.write(f"Static files collected in {settings.STATIC_ROOT} "
                              f"({time.monotonic() - started:.1f} s).")
        host, port = options["host"], options["port"]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            try:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror} "
                                   "(another server there? pick one with --port).") from exc

    def _start_workers(self) -> list[tuple[str, subprocess.Popen]]:
        started = []
        try:
            for name in cluster_names():
                started.append(self._start_worker(name))
        except CommandError:
            self._stop(started)
            raise
        return started

    def _start_worker(self, name: str | None = None) -> tuple[str, subprocess.Popen]:
        command = [sys.executable, os.path.join(settings.BASE_DIR, "manage.py"), "qcluster"]
        env = None
        label = "The worker cluster (qcluster)"
        if name is not None:
            env = {**os.environ, "Q_CLUSTER_NAME": name}
            label = f"The worker cluster {name!r} (Q_CLUSTER_NAME={name} qcluster)"
        worker = start_child(command, env)
        time.sleep(0.2)
        if worker.poll() is not None:
            raise CommandError(f"{label} exited at start (code {worker.returncode}); see its output.")
        self.stdout.write(f"{label} started (pid {worker.pid}).")
        return label, worker

    def _start_gunicorn(self, options) -> tuple[str, subprocess.Popen]:
        host, port = options["host"], options["port"]
        label = "The web server (gunicorn)"
        server = start_child(gunicorn_command(host, port, options["workers"], options["threads"]))
        local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        if not wait_until_listening(server, local, port, timeout=WEB_START_SECONDS):
            code = server.poll()
            stop_processes([server], timeout=10)
            why = f"exited at start (code {code})" if code is not None else \
                f"did not listen on {host}:{port} within {WEB_START_SECONDS} s"
            raise CommandError(f"{label} {why}; see its output above.")
        self.stdout.write(self.style.SUCCESS(
            f"Serving on http://{host}:{port}/ with gunicorn ({options['workers']} workers x "
            f"{options['threads']} threads; Ctrl-C stops)"
        ))
        return label, server

    # --- running ----------------------------------------------------------------------

    def _supervise(self, children: list[tuple[str, subprocess.Popen]]) -> str:
        """Wait until a child exits on its own; say which, so serve exits non-zero."""
        while True:
            for label, process in children:
                if process.poll() is not None:
                    return (f"{label} exited (code {process.returncode}); stopped the others. "
                            "See its output above.")
            time.sleep(0.5)

    def _stop(self, children: list[tuple[str, subprocess.Popen]]) -> None:
        running = [(label, process) for label, process in children if process.poll() is None]
        if not running:
            return
        names = " and ".join(label[0].lower() + label[1:] for label, _process in running)
        self.stdout.write(f"Stopping {names}…")
        stop_processes([process for _label, process in running])
        self.stdout.write("Stopped.")
