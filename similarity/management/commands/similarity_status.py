"""A table of every project's similarity readiness."""

from django.core.management.base import BaseCommand

from similarity.embedding import readiness
from similarity.embedding.scheduling import project_ids_with_assets
from similarity.host.scopes import project_label
from similarity.vectors.hnsw import index_exists, index_name


class Command(BaseCommand):
    help = "Show each project's embedding progress, failures, models and index."

    def add_arguments(self, parser):
        parser.add_argument("--refresh", action="store_true", help="Recount from the rows first")

    def handle(self, *args, **options):
        rows = []
        for project_id in project_ids_with_assets():
            state = (readiness.refresh(project_id) if options["refresh"]
                     else readiness.get_readiness(project_id))
            indexed = index_exists(index_name(project_id, state.active_model_key or state.model_key))
            rows.append([
                str(project_id), project_label(project_id)[:28], state.state,
                f"{state.embedded}/{state.total}", str(state.pending), str(state.failed),
                state.model_key, state.active_model_key or "-", "hnsw" if indexed else "exact",
            ])
        header = ["id", "project", "state", "embedded", "pending", "failed", "model",
                  "serving", "search"]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if not rows:
            self.stdout.write("No image assets yet.")
