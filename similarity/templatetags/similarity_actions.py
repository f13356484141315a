"""``{% similarity_bulk_actions project_id as bulk %}``: what the selection toolbar offers.

Nothing for a user who may not see the project; writes only for its editors. Each
action comes with its form URL and its fields' form names (``<action>-<field>``).
"""

from __future__ import annotations

import json
from typing import Any

from django import template

from similarity import actions
from similarity.host.access import get_access_policy
from similarity.host.links import action_url, curate_url, selection_url
from similarity.templatetags.similarity_tags import _may_view

register = template.Library()


@register.simple_tag(takes_context=True)
def similarity_bulk_actions(context: Any, project_id: Any, editor: Any = None) -> dict | None:
    """``editor``: the host's own answer to "may this user edit the project", when the page
    has it already (saves a query; only which buttons show depends on it: every action
    is checked again on the server)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if project_id in (None, "") or user is None:
        return None
    scope = str(project_id)
    if not _may_view(context, scope):  # remembered for the request by similarity_tags
        return None
    if editor is None or editor == "":  # not given: an unset variable renders as ""
        editor = get_access_policy().can_edit(user, scope)
    selection = selection_url()
    if selection is None:  # similarity.urls is not mounted: nothing to post to
        return None
    items = []
    for action in actions.available_actions(user, scope, editor=bool(editor)):
        items.append({
            "name": action.name,
            "label": action.label,
            "confirm": action.confirm,
            "download": action.download,
            "url": action_url(scope, action.name),
            "fields": [
                {"spec": spec, "input": f"{action.name}-{spec.name}",
                 "id": f"bulk-{action.name}-{spec.name}"}
                for spec in action.fields(user, scope)
            ],
        })
    return {"project_id": scope, "actions": items, "selection_url": selection,
            "diverse_url": curate_url("diverse", scope)}


@register.filter
def similarity_json(value: Any) -> str:
    """A value as JSON for a data attribute (autoescaped there): ids stay whole, commas and
    all, where a joined list would split them."""
    if value in (None, ""):  # a page without a query: no ids, an empty list
        value = []
    return json.dumps(value)
