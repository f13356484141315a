"""The exports: CSV and JSON of the selected assets, scored against the query."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy

from similarity.actions.base import ActionFile, BulkAction
from similarity.actions.query import QueryContext
from similarity.conf import similarity_settings
from similarity.host.files import image_file
from similarity.host.links import asset_label
from similarity.host.scopes import project_id_of, project_label, public_asset_key

EXPORT_COLUMNS = ("id", "filename", "group", "score", "query")
_UNSAFE = re.compile(r"[^\w.\- ()+,=@]+")


def _extension(asset: Any) -> str:
    stored = getattr(image_file(asset), "name", "") or ""
    return os.path.splitext(stored)[1].lower()


def file_names(assets: Iterable[Any]) -> dict[Any, str]:
    """A safe, unique file name per asset (its label, with the stored file's extension).

    The same names are used inside the ZIP and in the exports' ``filename`` column.
    """
    names: dict[Any, str] = {}
    taken: set[str] = set()
    for asset in assets:
        label = os.path.basename(str(asset_label(asset)).replace("\\", "/"))
        label = _UNSAFE.sub("_", label).strip(" .") or "image"
        ext = _extension(asset)
        stem, own = os.path.splitext(label)
        if ext and own.lower() != ext:
            stem, own = label, ext
        stem = stem[:150]
        name, number = f"{stem}{own}", 2
        while name.lower() in taken:
            name, number = f"{stem} ({number}){own}", number + 1
        taken.add(name.lower())
        names[asset.pk] = name
    return names


def _group(asset: Any, labels: dict[str, str]) -> str:
    """The asset's group: ASSET_GROUP (e.g. its dataset), else its project's name."""
    if similarity_settings.ASSET_GROUP is not None:
        return str(similarity_settings.ASSET_GROUP(asset))
    scope = project_id_of(asset)
    if scope not in labels:
        labels[scope] = project_label(scope)
    return labels[scope]


def export_rows(assets: list[Any], query: QueryContext | None) -> list[dict[str, Any]]:
    """One row per asset, in the order the assets were selected."""
    names = file_names(assets)
    scores = query.scores(assets) if query is not None else {}
    described = query.describe() if query is not None else ""
    labels: dict[str, str] = {}
    return [
        {
            "id": public_asset_key(asset.pk),
            "filename": names[asset.pk],
            "group": _group(asset, labels),
            "score": None if scores.get(asset.pk) is None else round(scores[asset.pk], 6),
            "query": described,
        }
        for asset in assets
    ]


def export_name(project_id: str, ext: str) -> str:
    """The download's file name: ``similar-<project>.<ext>``, safe in a header."""
    return f"similar-{_UNSAFE.sub('_', str(project_id))[:40]}.{ext}"


def _spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @) is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class ExportCSVAction(BulkAction):
    name = "export-csv"
    label = gettext_lazy("Export CSV")
    download = True

    def run(self, user, project_id, assets, params):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in export_rows(assets, params.get("query")):
            writer.writerow({key: _spreadsheet_safe(value) for key, value in row.items()})
        return ActionFile(export_name(project_id, "csv"), "text/csv; charset=utf-8",
                          out.getvalue())


class ExportJSONAction(BulkAction):
    name = "export-json"
    label = gettext_lazy("Export JSON")
    download = True

    def run(self, user, project_id, assets, params):
        query = params.get("query")
        body = {
            "project": project_id,
            "query": query.spec if query is not None else None,
            "count": len(assets),
            "items": export_rows(assets, query),
        }
        return ActionFile(export_name(project_id, "json"), "application/json",
                          json.dumps(body, indent=1))


