"""Embed what is missing (new installs, model changes) and retry failures."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from similarity.embedding import readiness
from similarity.embedding.scheduling import create_missing_rows, request_embedding, retry_failed
from similarity.embedding.worker import embed_project
from similarity.host.scopes import project_label
from similarity.management.scopes import add_scope_arguments, scopes_from_options


class Command(BaseCommand):
    help = (
        "Create embedding rows for images that have none for the current model, retry failed "
        "ones, and embed them: queued for the worker (default), or here with --sync."
    )

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--sync", action="store_true", help="Embed in this process now")
        parser.add_argument("--wait", action="store_true", help="Queue, then watch progress")
        parser.add_argument("--no-retry", action="store_true", help="Leave failed images alone")

    def handle(self, *args, **options):
        projects = scopes_from_options(options)
        if not projects:
            self.stdout.write("No images to index.")
            return
        for project_id in projects:
            created = create_missing_rows(project_id)
            retried = 0 if options["no_retry"] else retry_failed(project_id)
            state = readiness.refresh(project_id, error="")
            label = project_label(project_id)
            self.stdout.write(
                f"Project {project_id} ({label}): {created} new, {retried} to retry, "
                f"{state.pending} pending of {state.total}."
            )
            if options["sync"]:
                self._embed_here(project_id, state.pending, label)
            else:
                request_embedding(project_id, force=True)
                if options["wait"]:
                    self._watch(project_id, label)
        if not options["sync"] and not options["wait"]:
            self.stdout.write("Queued; the worker cluster (manage.py qcluster) does the work.")

    def _embed_here(self, project_id: int, pending: int, label: str) -> None:
        with tqdm(total=pending, desc=label[:30], unit="img", file=self.stdout) as bar:
            outcome = embed_project(project_id, budget_seconds=None, progress=bar.update)
        if "error" in outcome:
            raise CommandError(outcome["error"])
        self.stdout.write(self.style.SUCCESS(
            f"Embedded {outcome['embedded']}, failed {outcome['failed']} "
            f"in {outcome['seconds']:.1f} s."
        ))

    def _watch(self, project_id: int, label: str) -> None:
        state = readiness.refresh(project_id)
        with tqdm(total=state.total, initial=state.embedded + state.failed, desc=label[:30],
                  unit="img", file=self.stdout) as bar:
            while state.state == state.State.COMPUTING:
                time.sleep(1)
                state = readiness.get_readiness(project_id)
                bar.total = state.total
                bar.n = state.embedded + state.failed
                bar.refresh()
        self.stdout.write(f"Project {project_id}: {state.get_state_display()}.")
