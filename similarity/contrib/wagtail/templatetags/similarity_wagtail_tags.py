"""Tags used by our overrides of Wagtail's image listing and edit templates."""

from __future__ import annotations

from typing import Any

from django import template

from similarity.contrib.wagtail.links import results_url
from similarity.contrib.wagtail.state import image_states
from similarity.embedding import readiness
from similarity.embedding.worker_health import silence_minutes
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE

register = template.Library()


@register.inclusion_tag("similarity_wagtail/listing_actions.html")
def similarity_listing_actions(images: Any) -> dict[str, Any]:
    """Actions for every image on the listing page, in one query."""
    images = list(images or [])
    states = image_states([image.pk for image in images])
    return {"rows": [_row(image, states[image.pk]) for image in images]}


@register.inclusion_tag("similarity_wagtail/listing_notice.html", takes_context=True)
def similarity_library_notice(context: Any) -> dict[str, Any]:
    """The library's state above the listing, only while it is not simply ready."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not get_access_policy().can_view(user, SITE_SCOPE):
        return {}
    return {"readiness": readiness.readiness_for(SITE_SCOPE, user)}


@register.inclusion_tag("similarity_wagtail/worker_warning.html")
def similarity_worker_warning() -> dict[str, Any]:
    """A warning while no django-q2 cluster has been seen: without one nothing is analysed."""
    return {"minutes": silence_minutes()}


@register.inclusion_tag("similarity_wagtail/edit_actions.html")
def similarity_image_actions(image: Any) -> dict[str, Any]:
    return {"row": _row(image, image_states([image.pk])[image.pk])}


def _row(image: Any, state: Any) -> dict[str, Any]:
    return {
        "image": image,
        "state": state,
        "most_url": results_url(image.pk),
        "least_url": results_url(image.pk, "least"),
    }
