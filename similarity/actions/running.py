"""Running one bulk action for one user: every check, in order, then one transaction.

A results page (or a host's grid) sends a list of asset ids, the action's parameters and,
optionally, the query the results came from. ``perform`` then, for every action alike:

1. checks the project (NotFound for a project the user may not see);
2. checks the action may be run by this user (PermissionDenied for a write without
   ``can_edit``);
3. loads every asset through the access policy (``filter_assets`` when it narrows): one
   id unknown, hidden from the user, or of another project refuses the whole request
   (NotFound), nothing is half done;
4. validates the parameters (``ActionError``: a 400 saying why);
5. runs the action inside one transaction: a failure part-way leaves nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from similarity.actions.base import ActionError, ActionFile, ActionOutcome, BulkAction
from similarity.actions.query import resolve_query
from similarity.actions.registry import get_actions
from similarity.conf import similarity_settings
from similarity.errors import NotFound
from similarity.host.lookups import can_edit, check_project, get_assets_for


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
        raise NotFound("No such action.")
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


def execute(user: Any, prepared: Prepared) -> ActionOutcome | ActionFile:
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
) -> ActionOutcome | ActionFile:
    """Check, then run one action for one user (what the API and the pages call)."""
    return execute(user, prepare(user, project_id, name, ids, data, query_spec))
