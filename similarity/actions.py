"""Bulk actions on selected assets: one small registry, one interface, one way to run.

A results page (or a host's grid) sends a list of asset ids, the action's parameters and,
optionally, the query the results came from. ``perform`` then, for every action alike:

1. checks the project (404 for a project the user may not see);
2. checks the action may be run by this user (403 for a write without ``can_edit``);
3. loads every asset through the access policy (``filter_assets`` when it narrows) and
   answers 404 if any id is unknown, hidden from the user, or of another project: one bad
   id refuses the whole request, nothing is half done;
4. validates the parameters (``ActionError``: a 400 saying why);
5. runs the action inside one transaction: a failure part-way leaves nothing changed.

An action is a ``BulkAction`` subclass; the built-in ones export CSV or JSON, stream a
ZIP of the originals and delete. A host adds its own (tags, moves, ...) by naming them
in ``SIMILARITY["BULK_ACTIONS"]``; ``TagAction`` is the hook for "Add a tag", which the
app cannot implement itself (it knows nothing of the host's tag model).

Scores in exports are recomputed on the server: the cosine similarity of each asset's
stored vector to the unit query vector (``search.selection_vector`` for examples and
counter-examples, the stored vector of an outside ``QueryImage``), never a number the
client sent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from similarity import links, registry
from similarity.conf import similarity_settings
from similarity.models import Embedding
from similarity.search import SearchError, selection_vector
from similarity.shortcuts import can_edit, check_project, get_assets_for


class ActionError(ValueError):
    """A request an action cannot run; ``str()`` is the message for the user (a 400)."""


@dataclass
class ActionField:
    """One parameter of an action, enough to render a form control and validate it."""

    name: str
    label: str
    #: "text" (an <input>) or "choice" (a <select> of ``choices``)
    kind: str = "text"
    choices: list[tuple[str, str]] = field(default_factory=list)
    required: bool = True
    max_length: int = 100


@dataclass
class ActionOutcome:
    """What a write did: how many assets, a sentence for the user, extra data for the API."""

    count: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueryContext:
    """The query a results page searched with, resolved to its unit vector."""

    spec: dict[str, Any]
    vector: np.ndarray | None
    model_key: str

    def describe(self) -> str:
        """The query as one cell of an export: ``positive=1,2 negative=3`` or ``image=…``."""
        parts = []
        if self.spec.get("image"):
            parts.append(f"image={self.spec['image']}")
        if self.spec.get("positive"):
            parts.append("positive=" + ",".join(self.spec["positive"]))
        if self.spec.get("negative"):
            parts.append("negative=" + ",".join(self.spec["negative"]))
        return " ".join(parts)

    def scores(self, assets: Iterable[Any]) -> dict[Any, float | None]:
        """Cosine similarity of each asset's stored vector to the query (None: no vector)."""
        assets = list(assets)
        result: dict[Any, float | None] = {asset.pk: None for asset in assets}
        if self.vector is None:
            return result
        rows = Embedding.objects.filter(
            asset_id__in=[asset.pk for asset in assets], model_key=self.model_key,
            status=Embedding.Status.DONE,
        ).values_list("asset_id", "vector")
        for pk, stored in rows:
            vector = np.asarray(
                stored.to_list() if hasattr(stored, "to_list") else stored, dtype=np.float32
            )
            if vector.shape != self.vector.shape:
                continue
            norm = float(np.linalg.norm(vector)) or 1.0
            result[pk] = float(vector @ self.vector) / norm
        return result


class BulkAction:
    """Base class of every action. Subclasses set the class attributes and ``run``.

    ``run(user, project_id, assets, params)`` gets assets already access-checked and of
    the one project, and ``params`` as ``clean`` returned them (plus ``params["query"]``,
    a ``QueryContext`` or None). It answers an ``ActionOutcome`` (a write) or an
    ``HttpResponse`` (a file). It runs inside the request's one transaction.
    """

    name: str = ""
    label: str = ""
    #: True for writes: refused with 403 unless the policy's ``can_edit`` says yes.
    needs_edit: bool = False
    #: Shown as dangerous, and asks "Delete 12 images?" before running.
    confirm: bool = False
    #: The answer is a file (the browser downloads it; the page stays).
    download: bool = False

    def fields(self, user: Any, project_id: str) -> list[ActionField]:
        """Parameters of this action for this user and project (choices may depend on them)."""
        return []

    def clean(self, user: Any, project_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``data`` against ``fields``; ActionError names the first problem."""
        cleaned: dict[str, Any] = {}
        for spec in self.fields(user, project_id):
            value = data.get(spec.name)
            value = "" if value is None else str(value).strip()
            if not value:
                if spec.required:
                    raise ActionError(_("%(field)s is required.") % {"field": spec.label})
                cleaned[spec.name] = ""
                continue
            if any(ord(char) < 32 or ord(char) == 127 for char in value):
                raise ActionError(_("%(field)s cannot contain control characters.")
                                  % {"field": spec.label})
            if len(value) > spec.max_length:
                raise ActionError(_("%(field)s is at most %(n)d characters.")
                                  % {"field": spec.label, "n": spec.max_length})
            if spec.kind == "choice" and value not in {str(key) for key, _label in spec.choices}:
                raise ActionError(_("%(field)s: choose one of the values offered.")
                                  % {"field": spec.label})
            cleaned[spec.name] = value
        return cleaned

    def run(self, user: Any, project_id: str, assets: list[Any],
            params: dict[str, Any]) -> ActionOutcome | HttpResponse:
        raise NotImplementedError

    def describe(self, user: Any, project_id: str) -> dict[str, Any]:
        """The action as the API lists it."""
        return {
            "name": self.name, "label": str(self.label), "needs_edit": self.needs_edit,
            "confirm": self.confirm, "download": self.download,
            "params": [
                {"name": f.name, "label": str(f.label), "kind": f.kind, "required": f.required,
                 **({"choices": [{"value": k, "label": v} for k, v in f.choices]}
                    if f.kind == "choice" else {})}
                for f in self.fields(user, project_id)
            ],
        }


# --- exports ------------------------------------------------------------------------------

EXPORT_COLUMNS = ("id", "filename", "group", "score", "query")
_UNSAFE = re.compile(r"[^\w.\- ()+,=@]+")


def _extension(asset: Any) -> str:
    stored = getattr(getattr(asset, similarity_settings.IMAGE_FIELD, None), "name", "") or ""
    return os.path.splitext(stored)[1].lower()


def file_names(assets: Iterable[Any]) -> dict[Any, str]:
    """A safe, unique file name per asset (its label, with the stored file's extension).

    The same names are used inside the ZIP and in the exports' ``filename`` column.
    """
    names: dict[Any, str] = {}
    taken: set[str] = set()
    for asset in assets:
        label = os.path.basename(str(links.asset_label(asset)).replace("\\", "/"))
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
    scope = registry.project_id_of(asset)
    if scope not in labels:
        labels[scope] = registry.project_label(scope)
    return labels[scope]


def export_rows(assets: list[Any], query: QueryContext | None) -> list[dict[str, Any]]:
    """One row per asset, in the order the assets were selected."""
    names = file_names(assets)
    scores = query.scores(assets) if query is not None else {}
    described = query.describe() if query is not None else ""
    labels: dict[str, str] = {}
    return [
        {
            "id": asset.pk if isinstance(asset.pk, int) else str(asset.pk),
            "filename": names[asset.pk],
            "group": _group(asset, labels),
            "score": None if scores.get(asset.pk) is None else round(scores[asset.pk], 6),
            "query": described,
        }
        for asset in assets
    ]


def _attachment(response: HttpResponse, name: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def _export_name(project_id: str, ext: str) -> str:
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
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        return _attachment(response, _export_name(project_id, "csv"))


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
        response = HttpResponse(json.dumps(body, indent=1), content_type="application/json")
        return _attachment(response, _export_name(project_id, "json"))


# --- ZIP of the originals, streamed ---------------------------------------------------------


class _Sink(io.RawIOBase):
    """An unseekable file zipfile writes into; the generator hands out what it holds.

    zipfile notices ``tell()``/``seek()`` fail and writes data descriptors after each
    member instead of seeking back, so the archive is produced front to back and only
    one chunk is ever in memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


CHUNK = 256 * 1024


def stream_zip(entries: Iterable[tuple[str, Any]]) -> Iterator[bytes]:
    """Yield a ZIP archive of ``(name, field_file)`` pairs, chunk by chunk.

    Stored, not deflated: the originals are compressed images already. ZIP64 is forced
    per member because the size is not known before it is read.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            if isinstance(source, bytes):
                archive.writestr(info, source)
                yield sink.take()
                continue
            with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


class DownloadZipAction(BulkAction):
    name = "download-zip"
    label = gettext_lazy("Download ZIP")
    download = True

    def run(self, user, project_id, assets, params):
        names = file_names(assets)
        entries: list[tuple[str, Any]] = []
        missing: list[str] = []
        for asset in assets:
            source = getattr(asset, similarity_settings.IMAGE_FIELD, None)
            if source and source.storage.exists(source.name):
                entries.append((names[asset.pk], source))
            else:
                missing.append(names[asset.pk])
        if missing:  # said inside the archive: the download has started by then
            entries.append(("MISSING.txt", ("\n".join(missing) + "\n").encode()))
        response = StreamingHttpResponse(stream_zip(entries), content_type="application/zip")
        return _attachment(response, _export_name(project_id, "zip"))


# --- writes -----------------------------------------------------------------------------------


class DeleteAction(BulkAction):
    """Delete through the host's own ``delete()``: its signals remove files after commit
    (as the host's own delete page does), and similarity's handlers drop our rows."""

    name = "delete"
    label = gettext_lazy("Delete")
    needs_edit = True
    confirm = True

    def run(self, user, project_id, assets, params):
        for asset in assets:
            asset.delete()
        count = len(assets)
        return ActionOutcome(count, _("Deleted %(n)d image(s).") % {"n": count})


class TagAction(BulkAction):
    """Host hook for "Add a tag": subclass it, implement ``add_tag``, name it in
    ``BULK_ACTIONS``. The app has no tag model of its own."""

    name = "tag"
    label = gettext_lazy("Add a tag")
    needs_edit = True

    def fields(self, user, project_id):
        return [ActionField("tag", gettext_lazy("Tag"), max_length=100)]

    def add_tag(self, user: Any, project_id: str, assets: list[Any], tag: str) -> int:
        """Tag the assets; answer how many were newly tagged."""
        raise NotImplementedError

    def run(self, user, project_id, assets, params):
        added = self.add_tag(user, project_id, assets, params["tag"])
        return ActionOutcome(
            len(assets),
            _("Tagged %(n)d image(s) “%(tag)s”.") % {"n": len(assets), "tag": params["tag"]},
            {"tag": params["tag"], "added": added},
        )


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


# --- running one ---------------------------------------------------------------------------


def parse_ids(raw: Any) -> list[str]:
    """Ids as a list, a comma-separated string, or several form values; order kept, no repeats."""
    if raw is None:
        return []
    values = [raw] if isinstance(raw, (str, int)) else list(raw)
    ids: list[str] = []
    for value in values:
        ids.extend(part.strip() for part in str(value).split(",") if part.strip())
    return list(dict.fromkeys(ids))


def resolve_query(user: Any, project_id: str, spec: Mapping[str, Any] | None) -> QueryContext | None:
    """The query of a results page, checked like the search was: its assets through the
    policy and of this project, an outside image only its owner's, in this project."""
    if not spec:
        return None
    positive = parse_ids(spec.get("positive"))
    negative = parse_ids(spec.get("negative"))
    image = str(spec.get("image") or "").strip() or None
    if not (positive or image):
        return None
    clean = {"positive": positive, "negative": negative, "image": image}
    positives = get_assets_for(user, project_id, positive)
    negatives = get_assets_for(user, project_id, negative)
    vector = None
    if image:
        from similarity.query_images import get_query_for, unit_vector

        row = get_query_for(user, image)  # the owner's own, or 404
        if row.project_id != str(project_id):
            raise Http404("Not found.")
        vector = unit_vector(row)
    try:  # the outside image counts as one more example, as in its search
        query, _scope, _state, model_key = selection_vector(
            positives, negatives, image=vector, project_id=str(project_id))
    except SearchError:
        return QueryContext(clean, None, "")  # scores stay empty; the export still works
    if image and row.model_key != model_key:  # embedded before a model change
        return QueryContext(clean, None, "")
    return QueryContext(clean, query, model_key)


@dataclass
class Prepared:
    """An action with its assets and parameters, every check passed, not yet run."""

    action: BulkAction
    project_id: str
    assets: list[Any]
    params: dict[str, Any]


def prepare(
    user: Any,
    project_id: str,
    name: str,
    ids: list[str],
    data: Mapping[str, Any],
    query_spec: Mapping[str, Any] | None = None,
) -> Prepared:
    """Every check of one request (see the module doc), in that order; nothing runs."""
    project_id = str(project_id)
    check_project(user, project_id)
    action = get_actions().get(name)
    if action is None:
        raise Http404("No such action.")
    if action.needs_edit and not can_edit(user, project_id):
        raise PermissionDenied(_("Only the project's editors can do this."))
    if not ids:
        raise ActionError(_("Select at least one image."))
    maximum = int(similarity_settings.BULK_ACTIONS_MAX_ASSETS)
    if len(ids) > maximum:
        raise ActionError(_("Select at most %(n)d images at a time.") % {"n": maximum})
    assets = get_assets_for(user, project_id, ids)
    params = action.clean(user, project_id, data)
    params["query"] = resolve_query(user, project_id, query_spec)
    return Prepared(action, project_id, assets, params)


def execute(user: Any, prepared: Prepared) -> ActionOutcome | HttpResponse:
    """Run a prepared action in one transaction: all of it, or nothing."""
    with transaction.atomic():
        return prepared.action.run(user, prepared.project_id, prepared.assets, prepared.params)


def perform(
    user: Any,
    project_id: str,
    name: str,
    ids: list[str],
    data: Mapping[str, Any],
    query_spec: Mapping[str, Any] | None = None,
) -> ActionOutcome | HttpResponse:
    """Check, then run one action for one user (what the API and the pages call)."""
    return execute(user, prepare(user, project_id, name, ids, data, query_spec))
