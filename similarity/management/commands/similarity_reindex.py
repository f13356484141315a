"""Embed what is missing (new installs, model changes) and retry failures."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from similarity import readiness, registry, tasks


class Command(BaseCommand):
    help = (
        "Create embedding rows for images that have none for the current model, retry failed "
        "ones, and embed them: queued for the worker (default), or here with --sync."
    )

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--project", action="append",
                           help="Project key of any type: 42, a UUID, a slug; 'site' for a "
                                "site without projects (repeatable)")
        scope.add_argument("--all", action="store_true", help="Every project")
        parser.add_argument("--sync", action="store_true", help="Embed in this process now")
        parser.add_argument("--wait", action="store_true", help="Queue, then watch progress")
        parser.add_argument("--no-retry", action="store_true", help="Leave failed images alone")

    def handle(self, *args, **options):
        if options["all"]:
            projects = tasks.project_ids_with_assets()
        else:
            projects = [str(project_id) for project_id in options["project"]]
            known = registry.get_project_model()
            for project_id in projects:
                if known is not None and registry.get_project(project_id) is None:
                    raise CommandError(f"No project with key {project_id!r}.")
                if known is None and project_id != registry.SITE_SCOPE:
                    raise CommandError(
                        f"This site has no projects (PROJECT_LOOKUP is None): use --project "
                        f"{registry.SITE_SCOPE} or --all, not {project_id!r}."
                    )
        if not projects:
            self.stdout.write("No images to index.")
            return
        for project_id in projects:
            created = tasks.create_missing_rows(project_id)
            retried = 0 if options["no_retry"] else tasks.retry_failed(project_id)
            state = readiness.refresh(project_id, error="")
            label = registry.project_label(project_id)
            self.stdout.write(
                f"Project {project_id} ({label}): {created} new, {retried} to retry, "
                f"{state.pending} pending of {state.total}."
            )
            if options["sync"]:
                self._embed_here(project_id, state.pending, label)
            else:
                tasks.request_embedding(project_id, force=True)
                if options["wait"]:
                    self._watch(project_id, label)
        if not options["sync"] and not options["wait"]:
            self.stdout.write("Queued; the worker cluster (manage.py qcluster) does the work.")

    def _embed_here(self, project_id: int, pending: int, label: str) -> None:
        with tqdm(total=pending, desc=label[:30], unit="img", file=self.stdout) as bar:
            outcome = tasks.embed_project(project_id, budget_seconds=None, progress=bar.update)
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
