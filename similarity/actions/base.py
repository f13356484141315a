"""What every bulk action is: its parameters, what it answers, and the one base class.

An action is a ``BulkAction`` subclass; ``run`` gets assets already access-checked and of
one project, and answers an ``ActionOutcome`` (a write) or an ``ActionFile`` (a download).
It knows nothing of HTTP: the page and the API turn its answer into theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from similarity.errors import SimilarityError


class ActionError(SimilarityError, ValueError):
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
class ActionFile:
    """A file an action answers with: the page and the API send it as a download.

    ``content`` is the whole file, or an iterable of chunks sent as they are made (a ZIP of
    the originals is never held in memory).
    """

    filename: str
    content_type: str
    content: bytes | str | Iterable[bytes]

    @property
    def streamed(self) -> bool:
        return not isinstance(self.content, bytes | str)


class BulkAction:
    """Base class of every action. Subclasses set the class attributes and ``run``.

    ``run(user, project_id, assets, params)`` gets assets already access-checked and of
    the one project, and ``params`` as ``clean`` returned them (plus ``params["query"]``,
    a ``similarity.actions.query.QueryContext`` or None). It answers an ``ActionOutcome``
    (a write) or an ``ActionFile`` (a download; a host's own action may still answer a
    Django ``HttpResponse``, which the doors send as it is). It runs inside the request's
    one transaction.
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
            params: dict[str, Any]) -> ActionOutcome | ActionFile:
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


