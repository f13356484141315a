"""Analyse projects now (neighbour lists for duplicates and outliers) and print a summary."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from similarity import insight, insight_queries, registry, tasks


class Command(BaseCommand):
    help = (
        "Bring the neighbour lists behind Duplicates and Most unusual up to date, in this "
        "process (the worker does the same after embedding), then print the number of "
        "duplicate groups and the most unusual images."
    )

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--project", action="append",
                           help="Project key of any type: 42, a UUID, a slug; 'site' for a "
                                "site without projects (repeatable)")
        scope.add_argument("--all", action="store_true", help="Every project")
        parser.add_argument("--threshold", type=float, default=insight_queries.DEFAULT_THRESHOLD,
                            help="Cosine similarity for near-duplicates (default %(default)s)")
        parser.add_argument("--top", type=int, default=5, help="Outliers to list")

    def handle(self, *args, **options):
        if options["all"]:
            projects = tasks.project_ids_with_assets()
        else:
            projects = [str(project_id) for project_id in options["project"]]
            has_projects = registry.get_project_model() is not None
            for project_id in projects:
                if has_projects and registry.get_project(project_id) is None:
                    raise CommandError(f"No project with key {project_id!r}.")
                if not has_projects and project_id != registry.SITE_SCOPE:
                    raise CommandError(f"This site has no projects: use --project "
                                       f"{registry.SITE_SCOPE} or --all.")
        try:
            threshold = insight_queries.parse_threshold(options["threshold"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for project_id in projects:
            label = registry.project_label(project_id)
            outcome = insight.analyse_project(project_id)
            if outcome.get("skipped") == "embeddings not ready":
                self.stdout.write(f"Project {project_id} ({label}): embeddings are not ready yet.")
                continue
            groups = insight_queries.duplicate_groups(project_id, threshold)
            identical = sum(1 for group in groups if group.identical)
            self.stdout.write(
                f"Project {project_id} ({label}): {insight_queries.status(project_id)['message']}; "
                f"{identical} groups of identical files, {len(groups) - identical} near-duplicate "
                f"groups at {threshold}."
            )
            ranked = insight_queries.assets_for(
                list(insight_queries.outliers(project_id)[:options["top"]]))
            for item in ranked:
                self.stdout.write(f"  {item.score:.4f}  {item.asset}")
