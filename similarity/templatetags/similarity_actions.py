"""``{% similarity_bulk_actions project_id as bulk %}``: what the selection toolbar offers.

Nothing for a user who may not see the project; writes only for its editors. Each
action comes with its form URL and its fields' form names (``<action>-<field>``).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from similarity import actions
from similarity.access import get_access_policy

register = template.Library()


@register.simple_tag(takes_context=True)
def similarity_bulk_actions(context: Any, project_id: Any) -> dict | None:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if project_id in (None, "") or user is None:
        return None
    scope = str(project_id)
    if not get_access_policy().can_view(user, scope):
        return None
    try:
        selection_url = reverse("similarity:selection")
    except NoReverseMatch:
        return None
    items = []
    for action in actions.available_actions(user, scope):
        items.append({
            "name": action.name,
            "label": action.label,
            "confirm": action.confirm,
            "download": action.download,
            "url": reverse("similarity:action", args=[scope, action.name]),
            "fields": [
                {"spec": spec, "input": f"{action.name}-{spec.name}",
                 "id": f"bulk-{action.name}-{spec.name}"}
                for spec in action.fields(user, scope)
            ],
        })
    return {"project_id": scope, "actions": items, "selection_url": selection_url}
