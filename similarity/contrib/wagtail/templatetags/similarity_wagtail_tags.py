"""Tags used by our overrides of Wagtail's image listing and edit templates."""

from __future__ import annotations

from typing import Any

from django import template

from similarity.conf import similarity_settings
from similarity.contrib.wagtail.links import results_url
from similarity.contrib.wagtail.state import image_states
from similarity.embedding import readiness
from similarity.embedding.worker_health import silence_minutes
from similarity.errors import SimilarityError
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE
from similarity.search import find_similar

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


@register.inclusion_tag("similarity_wagtail/edit_actions.html", takes_context=True)
def similarity_image_actions(context: Any, image: Any) -> dict[str, Any]:
    """The edit page's actions, and the images this one nearly duplicates (those the
    editor may see, at or above ``NEAR_DUPLICATE_SIMILARITY``) once it is analysed."""
    state = image_states([image.pk])[image.pk]
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"row": _row(image, state),
            "near": near_duplicates(image, user) if state.searchable and user else []}


#: At most this many look-alikes are shown on the edit page.
NEAR_SHOWN = 6


def near_duplicates(image: Any, user: Any) -> list[Any]:
    """Matches of ``image`` at or above ``NEAR_DUPLICATE_SIMILARITY``, best first: an
    exact search of what ``user`` may see (Wagtail itself flags byte-identical files only)."""
    threshold = similarity_settings.NEAR_DUPLICATE_SIMILARITY
    if threshold is None:
        return []
    try:
        result = find_similar(image, limit=NEAR_SHOWN, user=user)
    except SimilarityError:  # not searchable after all (a model change meanwhile)
        return []
    return [match for match in result.matches if match.similarity >= float(threshold)]


def _row(image: Any, state: Any) -> dict[str, Any]:
    return {
        "image": image,
        "state": state,
        "most_url": results_url(image.pk),
        "least_url": results_url(image.pk, "least"),
    }
