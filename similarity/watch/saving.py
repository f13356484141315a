"""Saving a search: name it, check it, and keep its query vector (recomputed here, never
sent by the client) with the model that made it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from similarity.conf import similarity_settings
from similarity.errors import NotFound, SimilarityError
from similarity.host.lookups import check_project, get_assets_for
from similarity.models import QueryImage, SavedSearch
from similarity.search.query import MAX_EXAMPLES, selection_vector
from similarity.search.results import ORDERS, SearchError
from similarity.search.text import clean_text, text_vector
from similarity.vectors.math import unit

NAME_MAX_LENGTH = 200


class SaveError(SimilarityError, ValueError):
    """A saved search that cannot be saved; ``str()`` is the message for the user."""


def threshold_of(search: SavedSearch) -> float:
    """The similarity cut the search watches with (its own, else the setting for its order)."""
    if search.threshold is not None:
        return float(search.threshold)
    if search.order == SavedSearch.Order.LEAST:
        return float(similarity_settings.WATCH_LEAST_THRESHOLD)
    return float(similarity_settings.WATCH_THRESHOLD)


def clean_name(name: Any) -> str:
    # control characters (NUL cannot even be stored in a text column) are dropped
    name = "".join(char for char in str(name or "") if (ord(char) >= 32 and ord(char) != 127)
                   or char.isspace())
    name = " ".join(name.split())
    if not name:
        raise SaveError(_("Give the search a name."))
    if len(name) > NAME_MAX_LENGTH:
        raise SaveError(_("The name is too long (at most %d characters).") % NAME_MAX_LENGTH)
    return name


def clean_threshold(raw: Any) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise SaveError(_("The threshold must be a number from -1 to 1.")) from exc
    if not np.isfinite(value) or not -1.0 <= value <= 1.0:
        raise SaveError(_("The threshold must be a number from -1 to 1."))
    return value


def _name_taken(owner: Any, project_id: str, name: str, exclude_pk: Any = None) -> bool:
    taken = SavedSearch.objects.filter(owner=owner, project_id=project_id, name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    return taken.exists()


def _taken_message(name: str) -> str:
    return _("You already have a saved search named “%(name)s” in this project; choose "
             "another name.") % {"name": name}


def save_search(
    user: Any,
    project_id: str,
    *,
    name: Any,
    positive: Iterable[Any] = (),
    negative: Iterable[Any] = (),
    image: Any = None,
    text: Any = None,
    order: str = "most",
    threshold: Any = None,
) -> SavedSearch:
    """Save a query of a project for ``user``; the vector is recomputed here, never sent.

    Examples go through the access policy (another project's asset or one the user may not
    see: 404); an outside image must be the user's own ``QueryImage`` of that project.
    Raises NotFound, or SaveError saying what to fix.
    """
    project_id = str(project_id)
    check_project(user, project_id)
    name = clean_name(name)
    threshold = clean_threshold(threshold)
    if order not in ORDERS:
        raise SaveError(_("order must be 'most' or 'least'."))

    def assets(ids: Iterable[Any]) -> list:  # one query; 404 if hidden or elsewhere
        unique = list(dict.fromkeys(str(pk) for pk in ids if pk))
        if len(unique) > MAX_EXAMPLES:
            raise SaveError(_("A saved search names at most %(n)d examples and %(n)d "
                              "counter-examples.") % {"n": MAX_EXAMPLES})
        return get_assets_for(user, project_id, unique)

    if text not in (None, ""):
        return _save_text(user, project_id, name, text, order, threshold,
                          also=bool(list(positive) or list(negative) or image))
    positives, negatives = assets(positive), assets(negative)
    query_image = None
    if image:
        try:
            query_image = QueryImage.objects.filter(
                pk=uuid.UUID(str(image)), user=user, project_id=project_id
            ).first()
        except ValueError:
            query_image = None
        if query_image is None:
            raise NotFound()
    if query_image is not None and query_image.vector is None:
        raise SaveError(_("The uploaded image is not embedded yet; try again in a moment."))
    if not positives and query_image is None:
        raise SaveError(_("There is nothing to save: search with an image first."))
    if _name_taken(user, project_id, name):
        raise SaveError(_taken_message(name))
    try:
        image_vector = None if query_image is None else unit(query_image.vector)
        vector, _scope, _state, model_key = selection_vector(
            positives, negatives, image=image_vector, project_id=project_id)
    except SearchError as exc:
        raise SaveError(str(exc)) from exc
    if query_image is not None and query_image.model_key != model_key:
        raise SaveError(_("“%(name)s” was embedded by a model this project no longer searches "
                          "with; search with the image again, then save.")
                        % {"name": query_image.name})
    search = SavedSearch(
        project_id=project_id, owner=user, name=name,
        positive_ids=[str(a.pk) for a in positives], negative_ids=[str(a.pk) for a in negatives],
        query_image=query_image, vector=vector.astype(np.float32).tolist(), model_key=model_key,
        order=order, threshold=threshold,
    )
    try:
        with transaction.atomic():
            search.save()
    except IntegrityError as exc:  # a concurrent save with the same name
        raise SaveError(_taken_message(name)) from exc
    return search


def _save_text(user: Any, project_id: str, name: str, text: Any, order: str,
               threshold: float | None, *, also: bool) -> SavedSearch:
    """A description watched with the text model: "3 new images match “cracked casing”"."""
    if also:
        raise SaveError(_("Save a description alone: not with images in the same search."))
    try:
        text = clean_text(text)
        vector, model_key = text_vector(text)
    except SearchError as exc:
        raise SaveError(str(exc)) from exc
    if _name_taken(user, project_id, name):
        raise SaveError(_taken_message(name))
    search = SavedSearch(project_id=project_id, owner=user, name=name, text=text,
                         vector=vector.astype(np.float32).tolist(), model_key=model_key,
                         order=order, threshold=threshold)
    try:
        with transaction.atomic():
            search.save()
    except IntegrityError as exc:
        raise SaveError(_taken_message(name)) from exc
    return search


def rename(search: SavedSearch, name: Any) -> SavedSearch:
    name = clean_name(name)
    if _name_taken(search.owner_id, search.project_id, name, exclude_pk=search.pk):
        raise SaveError(_taken_message(name))
    search.name = name
    try:
        with transaction.atomic():
            search.save(update_fields=["name", "updated"])
    except IntegrityError as exc:
        raise SaveError(_taken_message(name)) from exc
    return search
