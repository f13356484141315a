"""The ``--project``/``--all`` options the commands share, checked the same way."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from similarity.embedding.scheduling import project_ids_with_assets
from similarity.host.models import get_project_model
from similarity.host.scopes import SITE_SCOPE, get_project


def add_scope_arguments(parser: CommandParser) -> None:
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--project", action="append",
                       help="Project key of any type: 42, a UUID, a slug; 'site' for a "
                            "site without projects (repeatable)")
    scope.add_argument("--all", action="store_true", help="Every project")


def scopes_from_options(options: dict[str, Any]) -> list[str]:
    """The scope ids the options name (every scope with images for ``--all``); a
    CommandError naming the problem for a project that does not exist."""
    if options["all"]:
        return project_ids_with_assets()
    projects = [str(project_id) for project_id in options["project"]]
    has_projects = get_project_model() is not None
    for project_id in projects:
        if has_projects and get_project(project_id) is None:
            raise CommandError(f"No project with key {project_id!r}.")
        if not has_projects and project_id != SITE_SCOPE:
            raise CommandError(
                f"This site has no projects (PROJECT_LOOKUP is None): use --project "
                f"{SITE_SCOPE} or --all, not {project_id!r}."
            )
    return projects
