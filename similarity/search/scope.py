"""What one search ranks: the scope's embedded rows, narrowed, and what it must leave out.

Built once per search and handed to whichever strategy ranks it, so each count and id
list it needs is read at most once however many rounds the search takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from django.db.models import QuerySet

from similarity.host.access import get_access_policy
from similarity.host.scopes import project_assets
from similarity.models import Embedding, ProjectReadiness


@dataclass
class Scope:
    """One search's candidates.

    ``all_rows`` are our finished rows of the project for the serving model and the
    query's width; ``rows`` the same narrowed to ``narrowing`` (a queryset of host assets:
    ``within`` and the policy's per-asset filter), if any. ``live`` are the host's assets
    the results may be, read again from the host's table so a row moved away or deleted
    since it was written never comes back. ``exclude`` are the query's own assets.
    """

    project_id: str
    model_key: str
    state: ProjectReadiness | None
    dims: int
    exclude: list[Any]
    all_rows: QuerySet
    rows: QuerySet
    narrowing: QuerySet | None
    live: QuerySet

    @cached_property
    def full_size(self) -> int:
        """Rows of the whole scope (narrowed or not, the cache holds all of them)."""
        state = self.state
        if state is not None and state.model_key == self.model_key:
            return state.embedded
        return self.all_rows.count()

    @cached_property
    def size(self) -> int:
        """Rows the search may rank, before leaving out the query's own."""
        return self.full_size if self.narrowing is None else self.rows.count()

    @cached_property
    def excluded_row_ids(self) -> np.ndarray:
        """Our row ids of the query's own assets among ``rows``."""
        if not self.exclude:
            return np.zeros(0, dtype=np.int64)
        rows = self.rows.filter(asset_id__in=self.exclude).values_list("pk", flat=True)
        return np.fromiter(rows, dtype=np.int64)

    @cached_property
    def allowed_row_ids(self) -> np.ndarray | None:
        """Our row ids the narrowing keeps (None: no narrowing, every row counts)."""
        if self.narrowing is None:
            return None
        return np.fromiter(self.rows.values_list("pk", flat=True), dtype=np.int64)

    @property
    def candidates(self) -> int:
        """Rows a complete answer ranks: the scope's, less the query's own."""
        return max(0, self.size - len(self.excluded_row_ids))


def build_scope(
    project_id: str,
    dims: int,
    *,
    model_key: str,
    state: ProjectReadiness | None,
    exclude: list[Any],
    within: QuerySet | None = None,
    user: Any = None,
) -> Scope:
    """The scope of one search of ``project_id`` with a query of width ``dims``."""
    all_rows = Embedding.objects.filter(
        project_id=project_id, model_key=model_key, status=Embedding.Status.DONE, dims=dims
    )
    narrowing = within
    policy = get_access_policy()
    if user is not None and policy.narrows_assets:
        base = within if within is not None else project_assets(project_id)
        narrowing = policy.filter_assets(user, base)
    live = project_assets(project_id)
    rows = all_rows
    if narrowing is not None:
        live = live.filter(pk__in=narrowing.values("pk"))
        rows = all_rows.filter(asset_id__in=narrowing.values("pk"))
    return Scope(project_id=project_id, model_key=model_key, state=state, dims=dims,
                 exclude=list(exclude), all_rows=all_rows, rows=rows, narrowing=narrowing,
                 live=live)
