"""“Similar to this” inside Wagtail's image chooser: pick a look-alike without leaving it.

An editor choosing an image for a page often knows one that is nearly right. The chooser's
results view runs the ``construct_image_chooser_queryset`` hook on the images the editor
may choose; when its URL carries ``similar_to``, the hook answers that image's look-alikes
among those images, in similarity order, and Wagtail's own chooser does the rest (tiles,
pagination, picking, multiple choice). The links that ask for it sit inside an element of
class ``pagination``: the chooser modal loads every ``.pagination a`` into its results area
(its ``paginationLinkSelector``), so no script of ours has to reach into the modal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, QuerySet, When
from django.http import HttpRequest
from django.utils.translation import gettext as _

from similarity.conf import similarity_settings
from similarity.errors import SimilarityError
from similarity.search import find_similar

#: The chooser URL's parameters: the image to start from, and the order.
SIMILAR_PARAM = "similar_to"
ORDER_PARAM = "similar_order"
#: Where the hook leaves what it did, for the results template's heading.
REQUEST_ATTRIBUTE = "similarity_chooser"


@dataclass
class ChooserSearch:
    """What the chooser was asked to show: the query image (None when it is not one the
    editor may choose), the order, and why nothing could be ranked, if so."""

    image: Any
    order: str
    problem: str = ""
    scores: dict[Any, float] = field(default_factory=dict)


def similar_images(images: QuerySet, request: HttpRequest) -> QuerySet:
    """The chooser's images, or, when asked, the look-alikes among them, best first.

    ``images`` are already narrowed by Wagtail to those the editor may choose, so the
    query image must be one of them and every result is too; the ranking is exact over
    that set and returns ``min(MAX_RESULTS, choosable - 1)`` images.
    """
    raw = request.GET.get(SIMILAR_PARAM, "").strip()
    if not raw:
        return images
    order = "least" if request.GET.get(ORDER_PARAM) == "least" else "most"
    try:
        image = images.filter(pk=raw).first()
    except (ValueError, TypeError, ValidationError):
        image = None
    search = ChooserSearch(image=image, order=order)
    setattr(request, REQUEST_ATTRIBUTE, search)
    if image is None:
        search.problem = _("That image is not one you can choose.")
        return images.none()
    try:
        result = find_similar(image, order=order, limit=similarity_settings.MAX_RESULTS,
                              within=images, user=request.user)
    except SimilarityError as exc:  # not analysed yet, failed, or the model is changing
        search.problem = str(exc)
        return images.none()
    ranked = [match.asset.pk for match in result.matches]
    search.scores = {match.asset.pk: match.similarity for match in result.matches}
    if not ranked:
        return images.none()
    position = Case(*[When(pk=pk, then=index) for index, pk in enumerate(ranked)],
                    output_field=IntegerField())
    return images.filter(pk__in=ranked).order_by(position)


def chooser_search(request: Any) -> ChooserSearch | None:
    """What ``similar_images`` did for this request, if it was asked anything."""
    return getattr(request, REQUEST_ATTRIBUTE, None)


def similar_url(results_url: str, image_pk: Any, order: str = "most") -> str:
    """The chooser's results URL (with the parameters Wagtail preserves, such as
    ``multiple``) asking for ``image_pk``'s look-alikes."""
    parts = urlsplit(results_url)
    query = [(key, value) for key, value in parse_qsl(parts.query)
             if key not in (SIMILAR_PARAM, ORDER_PARAM, "p", "q", "tag")]
    query.append((SIMILAR_PARAM, str(image_pk)))
    if order == "least":
        query.append((ORDER_PARAM, "least"))
    return urlunsplit(parts._replace(query=urlencode(query)))
