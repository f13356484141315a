"""Template pieces a host drops into its own templates.

Every tag that shows something of a project checks the access policy with the request's
user first (anonymous visitors and outsiders get nothing), so a host can drop them into
any template. ``{% load similarity_tags %}`` then:
- ``{% similarity_head %}`` in <head>: the app's CSS and JS;
- ``{% similarity_menu_items asset %}`` inside an asset's menu: Similarity Search and
  Least similar (disabled, with the reason, for videos);
- ``{% similarity_readiness project_id %}`` under an upload area: the readiness icon;
- ``{% similarity_text_search project_id %}``: "Describe what you are looking for" (only
  when a text model is configured);
- ``{% similarity_notifications_menu %}`` in a header or sidebar: unread count and list.
"""

from __future__ import annotations

from typing import Any

from django import template

from similarity.embedding import notifications, readiness
from similarity.host import links
from similarity.host.access import get_access_policy
from similarity.host.models import is_image
from similarity.host.scopes import SITE_SCOPE, project_id_of
from similarity.insight.reading import readiness_payload
from similarity.search import text as text_search

register = template.Library()


@register.inclusion_tag("similarity/includes/head.html")
def similarity_head() -> dict:
    return {}


def _user(context: Any) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


def _may_view(context: Any, project_id: str) -> bool:
    """The policy's answer, remembered on the user object for the rest of the request
    (a grid of 60 tiles asks 60 times about one project)."""
    user = _user(context)
    if user is None:
        return False
    answers = user.__dict__.setdefault("_similarity_can_view", {})
    if project_id not in answers:
        answers[project_id] = get_access_policy().can_view(user, project_id)
    return answers[project_id]


def _readiness(context: Any, project_id: str) -> Any:
    """The project's readiness, read once per request (the icon and the menus both ask)."""
    user = _user(context)
    if user is None:
        return readiness.get_readiness(project_id)
    states = user.__dict__.setdefault("_similarity_readiness", {})
    if project_id not in states:
        states[project_id] = readiness.readiness_for(project_id, user)
    return states[project_id]


def _unavailable(context: Any, project_id: str) -> str:
    """Why nothing of the project can be searched right now ("" when it can), asked once
    per project and request: the menus are then disabled without JavaScript too."""
    user = _user(context)
    answers = user.__dict__.setdefault("_similarity_unavailable", {})
    if project_id not in answers:
        answers[project_id] = readiness.unavailable_reason(_readiness(context, project_id))
    return answers[project_id]


@register.inclusion_tag("similarity/includes/menu_items.html", takes_context=True)
def similarity_menu_items(context: Any, asset: Any) -> dict:
    if not _may_view(context, project_id_of(asset)):
        return {"show": False}
    image = is_image(asset)
    return {
        "show": True,
        "asset": asset,
        "is_image": image,
        "unavailable": _unavailable(context, project_id_of(asset)) if image else "",
        "most_url": (links.results_url(asset.pk, "most") or "") if image else "",
        "least_url": (links.results_url(asset.pk, "least") or "") if image else "",
    }


@register.inclusion_tag("similarity/includes/readiness.html", takes_context=True)
def similarity_readiness(context: Any, project_id: Any = None) -> dict:
    project_id = SITE_SCOPE if project_id is None else str(project_id)
    if not _may_view(context, project_id):
        return {"show": False}
    state = _readiness(context, project_id)
    return {"show": True, "readiness": state, "data": readiness_payload(state, _user(context)),
            "poll_url": links.readiness_url(project_id) or "",
            "failed_url": links.failed_assets_url(project_id) or ""}


@register.inclusion_tag("similarity/includes/text_query.html", takes_context=True)
def similarity_text_search(context: Any, project_id: Any = None, text: str = "",
                           order: str = "most", target: Any = "") -> dict:
    """The description box; nothing when no text model is configured, for users who do
    not see the project, or where the app's pages are not mounted."""
    project_id = SITE_SCOPE if project_id is None else str(project_id)
    action = links.text_search_url(project_id)
    if not action or not text_search.enabled() or not _may_view(context, project_id):
        return {"show": False}
    from similarity.conf import similarity_settings

    state = readiness.text_readiness(_readiness(context, project_id), _user(context))
    note = readiness.text_unavailable_reason(state) if state is not None else ""
    if not note and state is not None and state.state == "computing":
        note = readiness.text_progress(state)
    counter = context.get("_similarity_text_boxes", 0) + 1
    context["_similarity_text_boxes"] = counter
    return {"show": True, "action": action, "text": text, "order": order, "note": note,
            "target": "" if target in (None, "") else str(target),
            "uid": counter, "max_chars": int(similarity_settings.TEXT_QUERY_MAX_CHARS)}


@register.inclusion_tag("similarity/includes/notifications_menu.html", takes_context=True)
def similarity_notifications_menu(context: dict) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {
        "show": True,
        "unread": notifications.unread_count(user),
        "latest": notifications.visible_notifications(user)[:notifications.MENU_ITEMS],
        "request": request,
    }


@register.filter
def similarity_thumbnail(asset: Any) -> str:
    return links.thumbnail_url(asset)


@register.filter
def similarity_asset_url(asset: Any) -> str:
    return links.asset_url(asset)


@register.filter
def similarity_label(asset: Any) -> str:
    return links.asset_label(asset)


@register.simple_tag
def similarity_match_url(query: Any, result: Any) -> str:
    """Where "Show match" reads the map of ``result`` against ``query`` ("" if unmounted)."""
    return (links.match_url(query, result) or "") if query is not None else ""


@register.filter
def similarity_picture(asset: Any) -> str:
    """The asset's whole picture, proportions kept (to draw a region on)."""
    return links.picture_url(asset)
