"""Analyse projects now (neighbour lists for duplicates and outliers) and print a summary."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from similarity.host.scopes import project_label
from similarity.insight import reading
from similarity.insight.stage import analyse_project
from similarity.management.scopes import add_scope_arguments, scopes_from_options


class Command(BaseCommand):
    help = (
        "Bring the neighbour lists behind Duplicates and Most unusual up to date, in this "
        "process (the worker does the same after embedding), then print the number of "
        "duplicate groups and the most unusual images."
    )

    def add_arguments(self, parser):
        add_scope_arguments(parser)
        parser.add_argument("--threshold", type=float, default=reading.DEFAULT_THRESHOLD,
                            help="Cosine similarity for near-duplicates (default %(default)s)")
        parser.add_argument("--top", type=int, default=5, help="Outliers to list")

    def handle(self, *args, **options):
        projects = scopes_from_options(options)
        try:
            threshold = reading.parse_threshold(options["threshold"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for project_id in projects:
            label = project_label(project_id)
            outcome = analyse_project(project_id)
            if outcome.get("skipped") == "embeddings not ready":
                self.stdout.write(f"Project {project_id} ({label}): embeddings are not ready yet.")
                continue
            groups = reading.duplicate_groups(project_id, threshold)
            identical = sum(1 for group in groups if group.identical)
            self.stdout.write(
                f"Project {project_id} ({label}): {reading.status(project_id)['message']}; "
                f"{identical} groups of identical files, {len(groups) - identical} near-duplicate "
                f"groups at {threshold}."
            )
            ranked = reading.assets_for(
                list(reading.outliers(project_id)[:options["top"]]))
            for item in ranked:
                self.stdout.write(f"  {item.score:.4f}  {item.asset}")
