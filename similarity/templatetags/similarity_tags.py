"""Template pieces a host drops into its own templates.

``{% load similarity_tags %}`` then:
- ``{% similarity_head %}`` in <head>: the app's CSS and JS;
- ``{% similarity_menu_items asset %}`` inside an asset's menu: Similarity Search and
  Least similar (disabled, with the reason, for videos);
- ``{% similarity_readiness project_id %}`` under an upload area: the readiness icon;
- ``{% similarity_notifications_menu %}`` in a header or sidebar: unread count and list.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from similarity import links, notifications, readiness, registry

register = template.Library()


@register.inclusion_tag("similarity/includes/head.html")
def similarity_head() -> dict:
    return {}


@register.inclusion_tag("similarity/includes/menu_items.html")
def similarity_menu_items(asset: Any) -> dict:
    image = registry.is_image(asset)
    return {
        "asset": asset,
        "is_image": image,
        "most_url": links.results_url(asset.pk, "most") if image else "",
        "least_url": links.results_url(asset.pk, "least") if image else "",
    }


@register.inclusion_tag("similarity/includes/readiness.html")
def similarity_readiness(project_id: int | None = None) -> dict:
    project_id = registry.SITE_SCOPE if project_id is None else project_id
    state = readiness.get_readiness(project_id)
    try:
        url = reverse("similarity:readiness", args=[project_id])
    except NoReverseMatch:
        url = ""
    return {"readiness": state, "data": readiness.as_dict(state), "poll_url": url,
            "failed_url": links.failed_assets_url(project_id)}


@register.inclusion_tag("similarity/includes/notifications_menu.html", takes_context=True)
def similarity_notifications_menu(context: dict) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {
        "show": True,
        "unread": notifications.unread_count(user),
        "latest": notifications.visible_notifications(user)[:5],
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
