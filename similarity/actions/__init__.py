"""Bulk actions on selected images: one small registry, one interface, one way to run.

An action is a ``BulkAction`` subclass (``base``); the built-in ones export CSV or JSON
(``exports``), stream a ZIP of the originals (``archive``) and delete (``writes``). A host
adds its own (tags, moves, ...) by naming them in ``SIMILARITY["BULK_ACTIONS"]``
(``registry``); ``TagAction`` is the hook for "Add a tag", which the app cannot implement
itself (it knows nothing of the host's tag model). ``running`` checks and runs one
request; ``query`` re-resolves the query a results page searched with, for the scores.

Everything a host imports is re-exported here (``from similarity.actions import
BulkAction, TagAction``).
"""

from similarity.actions.archive import DownloadZipAction, stream_zip
from similarity.actions.base import ActionError, ActionField, ActionFile, ActionOutcome, BulkAction
from similarity.actions.exports import (
    EXPORT_COLUMNS,
    ExportCSVAction,
    ExportJSONAction,
    export_rows,
    file_names,
)
from similarity.actions.query import QueryContext, parse_ids, resolve_query
from similarity.actions.registry import BUILTIN_ACTIONS, available_actions, get_actions
from similarity.actions.running import Prepared, execute, perform, prepare
from similarity.actions.writes import DeleteAction, TagAction

__all__ = [
    "BUILTIN_ACTIONS",
    "EXPORT_COLUMNS",
    "ActionError",
    "ActionField",
    "ActionFile",
    "ActionOutcome",
    "BulkAction",
    "DeleteAction",
    "DownloadZipAction",
    "ExportCSVAction",
    "ExportJSONAction",
    "Prepared",
    "QueryContext",
    "TagAction",
    "available_actions",
    "execute",
    "export_rows",
    "file_names",
    "get_actions",
    "parse_ids",
    "perform",
    "prepare",
    "resolve_query",
    "stream_zip",
]
