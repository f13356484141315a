"""Which actions a site offers: the host's own (``BULK_ACTIONS``) first, then the built-ins."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from similarity.actions.archive import DownloadZipAction
from similarity.actions.base import BulkAction
from similarity.actions.exports import ExportCSVAction, ExportJSONAction
from similarity.actions.writes import DeleteAction
from similarity.conf import similarity_settings
from similarity.host.lookups import can_edit

BUILTIN_ACTIONS: tuple[type[BulkAction], ...] = (
    ExportCSVAction, ExportJSONAction, DownloadZipAction, DeleteAction,
)


def get_actions() -> dict[str, BulkAction]:
    """Every action of this site: the host's ``BULK_ACTIONS`` first, then the built-ins."""
    found: dict[str, BulkAction] = {}
    for path in similarity_settings.BULK_ACTIONS:
        action = (import_string(path) if isinstance(path, str) else path)()
        found[action.name] = action
    for cls in BUILTIN_ACTIONS:
        found.setdefault(cls.name, cls())
    return found


def available_actions(user: Any, project_id: str, *, editor: bool | None = None) -> list[BulkAction]:
    """The actions this user may run in this project (writes only for editors)."""
    if editor is None:
        editor = can_edit(user, project_id)
    return [action for action in get_actions().values() if editor or not action.needs_edit]
