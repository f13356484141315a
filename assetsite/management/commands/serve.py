"""Start the whole site: database, migrations, demo data, worker cluster, web server.

One Ctrl-C (or SIGTERM) stops the web server and the worker cluster together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from assetsite.processes import die_with_parent, stop_process


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the site with its background worker on an embedded (or DATABASE_URL) PostgreSQL."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not seed demo data.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start qcluster.")

    def handle(self, *args, **options):
        self._check_database()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        self.stdout.write(self.style.SUCCESS("Database ready, migrations applied."))
        if not options["no_demo"]:
            from assetsite.demo import seed_demo

            login = seed_demo(stdout=self.stdout)
            if login:
                self.stdout.write(self.style.WARNING(
                    f"Demo login: username {login[0]!r}, password {login[1]!r} "
                    "(shown once; change it in the admin)."
                ))
            elif get_user_model().objects.filter(username="demo").exists():
                self.stdout.write(
                    "Demo data already there: log in as 'demo' with the password printed on "
                    "the first run (`python manage.py changepassword demo` sets a new one)."
                )
        # SIGTERM behaves like Ctrl-C, so supervisors and tests stop both processes. It is
        # in place before the worker starts, so no signal can leave an orphaned cluster.
        signal.signal(signal.SIGTERM, _interrupt)
        # Ctrl-C stops serve even when it was started from a shell that ignores SIGINT
        # (a background job in a script inherits SIG_IGN).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        worker = None
        address = f"{options['host']}:{options['port']}"
        try:
            worker = None if options["no_worker"] else self._start_worker()
            self.stdout.write(self.style.SUCCESS(f"Serving on http://{address}/ (Ctrl-C stops)"))
            call_command("runserver", address, use_reloader=False, use_threading=True,
                         skip_checks=True)
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C (or SIGTERM) must not abort stopping the worker.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop_worker(worker)

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

    def _start_worker(self):
        command = [sys.executable, os.path.join(settings.BASE_DIR, "manage.py"), "qcluster"]
        # Its own session, so a terminal's Ctrl-C reaches serve only and serve stops the
        # cluster in order; a parent-death signal, so serve killed with SIGKILL (which
        # runs no clean-up) still takes the cluster with it.
        worker = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent)
        time.sleep(0.2)
        if worker.poll() is not None:
            raise CommandError("The worker cluster (qcluster) exited at start; see its output.")
        self.stdout.write(f"Worker cluster started (pid {worker.pid}).")
        return worker

    def _stop_worker(self, worker):
        if worker is None or worker.poll() is not None:
            return
        self.stdout.write("Stopping the worker cluster…")
        stop_process(worker)
        self.stdout.write("Stopped.")
