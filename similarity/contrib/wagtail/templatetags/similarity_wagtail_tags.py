"""Tags used by our overrides of Wagtail's image listing and edit templates."""

from __future__ import annotations

from typing import Any

from django import template

from similarity.contrib.wagtail.links import results_url
from similarity.contrib.wagtail.state import image_states

register = template.Library()


@register.inclusion_tag("similarity_wagtail/listing_actions.html")
def similarity_listing_actions(images: Any) -> dict[str, Any]:
    """Actions for every image on the listing page, in one query."""
    images = list(images or [])
    states = image_states([image.pk for image in images])
    return {"rows": [_row(image, states[image.pk]) for image in images]}


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
