"""The query vector: one image's, or several examples' and counter-examples' combined.

Every search, saved search and export makes its query here, from the vectors of the
model the scope is served by (the previous model until the scope is ready on a new one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.host.links import asset_label
from similarity.host.models import is_image
from similarity.host.scopes import project_id_of
from similarity.models import Embedding, ProjectReadiness
from similarity.search.results import NotAnImage, NotEmbedded, SearchError
from similarity.vectors.math import unit
from similarity.vectors.model_keys import current_model_key

#: Weight of the counter-examples: q = mean(positives) - NEGATIVE_WEIGHT * mean(negatives).
NEGATIVE_WEIGHT = 0.5
#: Examples (and, separately, counter-examples) one query may name: the API's bound, and
#: the pages' and actions' too, so a 2.5 MB form of ids is refused before any lookup.
MAX_EXAMPLES = 100


def serving(project_id: str) -> tuple[ProjectReadiness | None, str]:
    """The scope's readiness record (None before its first refresh) and the model whose
    vectors its searches use now."""
    state = ProjectReadiness.objects.filter(project_id=str(project_id)).first()
    return state, (state.active_model_key if state else "") or current_model_key()


def serving_key(project_id: str) -> str:
    """The model whose vectors the project's searches use now (the previous one until
    the project is ready on a new one)."""
    return serving(project_id)[1]


def query_embedding(
    row: Embedding | None, label: str | None = None, state: ProjectReadiness | None = None
) -> Embedding:
    """The query asset's row for the serving model, or NotEmbedded saying why not."""
    if row is not None and row.status == Embedding.Status.DONE and row.vector is not None:
        return row
    name = f"“{label}”" if label else _("This image")
    if state is not None and state.error and (row is None or row.status != Embedding.Status.FAILED):
        # The worker cannot embed anything (a model that does not load): say so, not "soon".
        raise NotEmbedded(
            _("%(name)s is not embedded because similarity search is unavailable: %(reason)s")
            % {"name": name, "reason": state.error_summary}
        )
    if row is not None and row.status == Embedding.Status.FAILED:
        raise NotEmbedded(
            _("%(name)s could not be embedded, so it cannot be searched: %(reason)s")
            % {"name": name, "reason": row.error or _("unknown error")}
        )
    raise NotEmbedded(
        _("%(name)s has not been embedded yet; it becomes searchable once the worker has "
          "processed it.") % {"name": name}
    )


def selection_vector(
    assets: Iterable[Any],
    negatives: Iterable[Any] = (),
    *,
    image: np.ndarray | None = None,
    project_id: str | None = None,
) -> tuple[np.ndarray, str, ProjectReadiness | None, str]:
    """The unit query vector of examples and counter-examples, and what it was made with.

    Returns ``(vector, project_id, readiness, model_key)``: the formula of
    ``find_similar_to_selection``, for callers that keep the query (saved searches,
    exports). ``image`` is an outside image's unit vector (of ``project_id``): one more
    positive, so ``normalise(mean([image, *p]) - NEGATIVE_WEIGHT * mean(n))``, and the
    only one when no asset is given. Raises SearchError / NotAnImage / NotEmbedded like a
    search.
    """
    positives, negatives = list(assets), list(negatives)
    if not positives and image is None:
        raise SearchError(_("Select at least one image to search with."))
    if {item.pk for item in positives} & {item.pk for item in negatives}:
        raise SearchError(_("An image cannot be both an example and a counter-example."))
    for item in positives + negatives:
        if not is_image(item):
            raise NotAnImage(_("Similarity search is currently only supported for images."))
    scopes = {project_id_of(item) for item in positives + negatives}
    if image is not None:
        scopes.add(str(project_id))
    if len(scopes) != 1:
        raise SearchError(_("All the images of a search must belong to the same project."))
    project_id = scopes.pop()
    state, model_key = serving(project_id)
    rows = {
        row.asset_id: row
        for row in Embedding.objects.filter(
            asset_id__in=[item.pk for item in positives + negatives], model_key=model_key
        )
    }
    single = len(positives) == 1 and not negatives and image is None
    seen_dims = set() if image is None else {int(image.shape[0])}

    def vectors(items: list[Any]) -> np.ndarray:
        found = [
            query_embedding(rows.get(item.pk), None if single else asset_label(item), state)
            for item in items
        ]
        seen_dims.update(row.dims for row in found)  # examples, counter-examples and image
        if len(seen_dims) > 1:
            raise NotEmbedded(_("The selected images were embedded by different models."))
        return np.stack([unit(row.vector) for row in found])

    examples = [vectors(positives)] if positives else []
    if image is not None:
        examples.insert(0, unit(image)[None])
    counter = vectors(negatives) if negatives else None
    return combine(np.vstack(examples), counter), project_id, state, model_key


def combine(positives: np.ndarray, negatives: np.ndarray | None = None) -> np.ndarray:
    """``normalise(mean(p) - NEGATIVE_WEIGHT * mean(n))`` over rows of unit vectors: the
    query of every multi-example search (and of saved searches recomputed by the worker)."""
    query = np.asarray(positives, dtype=np.float32).mean(axis=0)
    if negatives is not None and len(negatives):
        query = query - NEGATIVE_WEIGHT * np.asarray(negatives, dtype=np.float32).mean(axis=0)
    if float(np.linalg.norm(query)) < 1e-6:
        raise SearchError(_("The examples and counter-examples cancel out; remove some."))
    return unit(query)
