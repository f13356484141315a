"""The images a curation step works on: a set of the scope's images, read once.

A set is what the user may see of the project, narrowed to a dataset (a group), to chosen
ids (a selection, a results page) or both; only images with a finished embedding of the
model the project's searches use take part (the others cannot be compared yet).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import QuerySet

from similarity.models import Embedding, ProjectReadiness
from similarity.search import serving
from similarity.vectors.rows import row_vectors


@dataclass
class Candidates:
    """Our row ids (ascending), the host's asset keys and unit vectors, aligned."""

    row_ids: np.ndarray
    asset_ids: list[Any]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.row_ids)

    @property
    def digest(self) -> bytes:
        """Names this exact set (for caching an answer across the pages of a list)."""
        return hashlib.blake2b(self.row_ids.tobytes(), digest_size=16).digest()

    def without(self, row_ids: np.ndarray) -> Candidates:
        """The same set less ``row_ids`` (a reference never counts its own candidates)."""
        keep = ~np.isin(self.row_ids, row_ids, assume_unique=True)
        if keep.all():  # disjoint sets (two datasets): nothing to copy
            return self
        return Candidates(self.row_ids[keep], [a for a, k in zip(self.asset_ids, keep, strict=True) if k],
                          self.vectors[keep])


@dataclass
class Serving:
    """The model and record a curation step reads vectors of (one per request)."""

    project_id: str
    state: ProjectReadiness | None
    model_key: str
    dims: int | None

    @property
    def version(self) -> Any:
        state = self.state
        return (state.updated, state.embedded) if state else object()

    @property
    def scope_rows(self) -> int:
        if self.state is not None and self.state.model_key == self.model_key:
            return self.state.embedded
        return self.rows().count()

    def rows(self) -> QuerySet:
        rows = Embedding.objects.filter(project_id=self.project_id, model_key=self.model_key,
                                        status=Embedding.Status.DONE)
        return rows if self.dims is None else rows.filter(dims=self.dims)


def serving_for(project_id: str) -> Serving:
    """The scope's serving model (the previous one until the scope is ready on a new one,
    as search uses) and the width of its vectors."""
    project_id = str(project_id)
    state, model_key = serving(project_id)
    widths = Counter(
        Embedding.objects.filter(project_id=project_id, model_key=model_key,
                                 status=Embedding.Status.DONE)
        .values_list("dims", flat=True)[:1000]
    )
    dims = widths.most_common(1)[0][0] if widths else None
    return Serving(project_id, state, model_key, dims)


def read(model: Serving, assets: QuerySet) -> Candidates:
    """The embedded images among ``assets`` (a queryset of the host's assets)."""
    if model.dims is None:
        return Candidates(np.zeros(0, np.int64), [], np.zeros((0, 1), np.float32))
    pairs = list(model.rows().filter(asset_id__in=assets.values("pk"))
                 .order_by("pk").values_list("pk", "asset_id"))
    if not pairs:
        return Candidates(np.zeros(0, np.int64), [], np.zeros((0, model.dims), np.float32))
    ids = np.fromiter((pk for pk, _ in pairs), dtype=np.int64, count=len(pairs))
    found, vectors = row_vectors(model.project_id, model.model_key, model.dims, ids,
                                 version=model.version, scope_rows=model.scope_rows)
    if len(found) != len(ids):  # a row left between the two reads
        keep = np.isin(ids, found)
        pairs = [pair for pair, k in zip(pairs, keep, strict=True) if k]
    return Candidates(found, [asset_id for _, asset_id in pairs], vectors)
