"""Tags used by our overrides of Wagtail's image listing and edit templates."""

from __future__ import annotations

from typing import Any

from django import template

from similarity.contrib.wagtail.chooser import ChooserSearch, chooser_search, similar_url
from similarity.contrib.wagtail.links import results_url
from similarity.contrib.wagtail.near import near_duplicates
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


@register.simple_tag(takes_context=True)
def similarity_chooser_search(context: Any) -> ChooserSearch | None:
    """The look-alike search the image chooser's results show, if any."""
    return chooser_search(context.get("request"))


@register.inclusion_tag("similarity_wagtail/chooser_actions.html", takes_context=True)
def similarity_chooser_actions(context: Any, images: Any, results_url: str) -> dict[str, Any]:
    """"Similar" and "Least similar" for each analysed image of a chooser page (one query),
    with its score while the page shows look-alikes."""
    images = list(images or [])
    states = image_states([image.pk for image in images])
    search = chooser_search(context.get("request"))
    scores = search.scores if search else {}
    return {"rows": [
        {"image": image, "score": scores.get(image.pk),
         "most_url": similar_url(results_url, image.pk),
         "least_url": similar_url(results_url, image.pk, "least")}
        for image in images if states[image.pk].searchable
    ]}


@register.inclusion_tag("similarity_wagtail/listing_notice.html", takes_context=True)
def similarity_library_notice(context: Any) -> dict[str, Any]:
    """The library's state above the listing, only while it is not simply ready, and
    "Search with an image" (for whoever may search the library)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not get_access_policy().can_view(user, SITE_SCOPE):
        return {}
    return {"readiness": readiness.readiness_for(SITE_SCOPE, user), "request": request,
            "can_search_image": True}


@register.inclusion_tag("similarity_wagtail/worker_warning.html")
def similarity_worker_warning() -> dict[str, Any]:
    """A warning while no django-q2 cluster has been seen: without one nothing is analysed."""
    return {"minutes": silence_minutes()}


@register.inclusion_tag("similarity_wagtail/edit_actions.html", takes_context=True)
def similarity_image_actions(context: Any, image: Any) -> dict[str, Any]:
    """The edit page's actions, and the images this one nearly duplicates (those the
    editor may see, at or above ``NEAR_DUPLICATE_SIMILARITY``) once it is analysed."""
    state = image_states([image.pk])[image.pk]
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"row": _row(image, state),
            "near": near_duplicates(image, user) if state.searchable and user else []}


def _row(image: Any, state: Any) -> dict[str, Any]:
    return {
        "image": image,
        "state": state,
        "most_url": results_url(image.pk),
        "least_url": results_url(image.pk, "least"),
    }
