"""Saved query vectors across model changes.

A model change leaves saved vectors of the old model: they are recomputed from their
examples once those are embedded by the new model (``refresh_vector``); a search made from
an outside image cannot be (its image was not kept) and must be saved again
(``needs_resave``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.host.models import asset_pk
from similarity.models import Embedding, SavedSearch, TextQuery
from similarity.search.query import combine, serving_key
from similarity.search.results import SearchError
from similarity.vectors.math import unit
from similarity.vectors.model_keys import ModelLoadError, text_model_key
from similarity.vectors.text_model import get_text_tower

logger = logging.getLogger(__name__)


def _rows_vectors(pks: list[Any], model_key: str) -> list[np.ndarray]:
    """Unit vectors of these assets by ``model_key``; SearchError if one is missing."""
    if not pks:
        return []
    rows = dict(
        Embedding.objects.filter(
            asset_id__in=pks, model_key=model_key, status=Embedding.Status.DONE
        ).values_list("asset_id", "vector")
    )
    found = {str(pk): vector for pk, vector in rows.items() if vector is not None}
    missing = [pk for pk in pks if str(pk) not in found]
    if missing:
        raise SearchError(_("Some of the search's images are not embedded by this model."))
    return [unit(found[str(pk)]) for pk in pks]


def refresh_vector(search: SavedSearch, model_key: str, *, may_load: bool = False) -> bool:
    """Recompute the vector for ``model_key`` from the search's examples, if possible.

    True when the search now has a vector of that model (it had one already, or its
    examples are all embedded by it). An outside image's search can only be refreshed when
    its QueryImage was made by that model. A description is re-embedded by the current
    text model: from the text queries already embedded, or (``may_load``: in the worker,
    which has the text tower) by the text tower itself.
    """
    if search.model_key == model_key and search.vector is not None:
        return True
    if search.text:
        return _refresh_text(search, model_key, may_load=may_load)
    try:
        positives = _rows_vectors([asset_pk(pk) for pk in search.positive_ids], model_key)
        negatives = _rows_vectors([asset_pk(pk) for pk in search.negative_ids], model_key)
        if search.query_image_id:
            image = search.query_image
            if image is None or image.model_key != model_key:
                return False
            positives.append(unit(image.vector))
        if not positives:
            return False
        vector = combine(np.stack(positives), np.stack(negatives) if negatives else None)
    except (SearchError, ValueError, TypeError):
        return False
    search.vector = vector.tolist()
    search.model_key = model_key
    search.save(update_fields=["vector", "model_key", "updated"])
    logger.info("Saved search %s: vector recomputed for %s", search.pk, model_key)
    return True


def _refresh_text(search: SavedSearch, model_key: str, *, may_load: bool) -> bool:
    if model_key != text_model_key():
        return False
    known = TextQuery.objects.filter(model_key=model_key, text=search.text,
                                     vector__isnull=False).values_list("vector", flat=True).first()
    if known is not None:
        vector = unit(known)
    elif may_load:
        try:
            vector = get_text_tower().embed_texts([search.text])[0]
        except ModelLoadError:
            return False
    else:
        return False
    search.vector = np.asarray(vector, dtype=np.float32).tolist()
    search.model_key = model_key
    search.save(update_fields=["vector", "model_key", "updated"])
    logger.info("Saved search %s: description re-embedded by %s", search.pk, model_key)
    return True


def needs_resave(search: SavedSearch, serving: str | None = None) -> bool:
    """Whether the search is stuck on a model its project no longer serves (``serving``:
    that model's key, when the caller has read it already). A description is served by
    the text model: stuck when none is configured any more."""
    if search.text:
        key = text_model_key()
        return key is None or (search.model_key != key and not refresh_vector(search, key))
    key = serving or serving_key(search.project_id)
    return search.model_key != key and not refresh_vector(search, key)
