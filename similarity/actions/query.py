"""The query a results page searched with, resolved again on the server for an action.

Scores in exports are recomputed here: the cosine similarity of each asset's stored vector
to the unit query vector (``search.query.selection_vector`` for examples and
counter-examples, the stored vector of an outside ``QueryImage``), never a number the
client sent. Ids travel as text (any host key type).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.actions.base import ActionError
from similarity.errors import NotFound
from similarity.host.lookups import get_assets_for
from similarity.models import Embedding
from similarity.search.outside import get_query_for, unit_vector
from similarity.search.query import MAX_EXAMPLES, selection_vector
from similarity.search.results import SearchError
from similarity.vectors.math import as_array


def parse_ids(raw: Any) -> list[str]:
    """Ids as text, order kept, no repeats: a list (JSON, several form values) item by item,
    each taken whole (a host key may hold a comma: ``["pin,1"]`` is one id); one string
    is a comma-separated list (a query string's ``ids=1,2,3``)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        ids = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, int):
        ids = [str(raw)]
    else:
        ids = [str(value).strip() for value in raw]
    return list(dict.fromkeys(part for part in ids if part))


@dataclass
class QueryContext:
    """The query a results page searched with, resolved to its unit vector."""

    spec: dict[str, Any]
    vector: np.ndarray | None
    model_key: str

    def describe(self) -> str:
        """The query as one cell of an export: ``positive=1,2 negative=3`` or ``image=…``."""
        parts = []
        if self.spec.get("image"):
            parts.append(f"image={self.spec['image']}")
        if self.spec.get("positive"):
            parts.append("positive=" + ",".join(self.spec["positive"]))
        if self.spec.get("negative"):
            parts.append("negative=" + ",".join(self.spec["negative"]))
        return " ".join(parts)

    def scores(self, assets: Iterable[Any]) -> dict[Any, float | None]:
        """Cosine similarity of each asset's stored vector to the query (None: no vector)."""
        assets = list(assets)
        result: dict[Any, float | None] = {asset.pk: None for asset in assets}
        if self.vector is None:
            return result
        rows = Embedding.objects.filter(
            asset_id__in=[asset.pk for asset in assets], model_key=self.model_key,
            status=Embedding.Status.DONE,
        ).values_list("asset_id", "vector")
        for pk, stored in rows:
            vector = as_array(stored)
            if vector.shape != self.vector.shape:
                continue
            norm = float(np.linalg.norm(vector)) or 1.0
            result[pk] = float(vector @ self.vector) / norm
        return result


def resolve_query(user: Any, project_id: str, spec: Mapping[str, Any] | None) -> QueryContext | None:
    """The query of a results page, checked like the search was: its assets through the
    policy and of this project, an outside image only its owner's, in this project."""
    if not spec:
        return None
    positive = parse_ids(spec.get("positive"))
    negative = parse_ids(spec.get("negative"))
    image = str(spec.get("image") or "").strip() or None
    if not (positive or image):
        return None
    if len(positive) > MAX_EXAMPLES or len(negative) > MAX_EXAMPLES:
        raise ActionError(_("A query names at most %(n)d examples and %(n)d counter-examples.")
                          % {"n": MAX_EXAMPLES})
    clean = {"positive": positive, "negative": negative, "image": image}
    positives = get_assets_for(user, project_id, positive)
    negatives = get_assets_for(user, project_id, negative)
    vector = None
    if image:
        row = get_query_for(user, image)  # the owner's own, or NotFound
        if row.project_id != str(project_id):
            raise NotFound()
        vector = unit_vector(row)
    try:  # the outside image counts as one more example, as in its search
        query, _scope, _state, model_key = selection_vector(
            positives, negatives, image=vector, project_id=str(project_id))
    except SearchError:
        return QueryContext(clean, None, "")  # scores stay empty; the export still works
    if image and row.model_key != model_key:  # embedded before a model change
        return QueryContext(clean, None, "")
    return QueryContext(clean, query, model_key)


