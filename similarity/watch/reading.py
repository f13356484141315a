"""A saved search as its owner reads it: looked up by owner, matches shown through the
access policy at read time.

A saved search is its owner's alone: it is looked up by owner (anyone else gets NotFound,
ids reveal nothing) and the owner must still see its project. An image the owner can no
longer see, or one deleted or moved out of the project, is left out of the matches.
"""

from __future__ import annotations

import uuid
from typing import Any

from similarity.errors import NotFound
from similarity.host.lookups import check_project, visible_assets
from similarity.host.models import asset_pks
from similarity.models import SavedSearch
from similarity.search.results import Match

#: Matches read for one page or answer, at most.
MAX_MATCHES = 1000


def own_search(user: Any, pk: Any) -> SavedSearch:
    """The user's own saved search in a project they may still see; NotFound otherwise."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise NotFound() from exc
    search = (SavedSearch.objects.select_related("query_image")
              .filter(pk=pk, owner_id=getattr(user, "pk", None)).first())
    if search is None:
        raise NotFound()
    check_project(user, search.project_id)
    return search


def visible_matches(user: Any, search: SavedSearch, batch: uuid.UUID | None = None) -> list[Match]:
    """The search's matches whose images the user may see now, best first (for a
    "least similar" watch, the most unlike first)."""
    rows = search.matches.all()
    if search.order == SavedSearch.Order.LEAST:
        rows = rows.order_by("similarity", "id")
    if batch is not None:
        rows = rows.filter(batch=batch)
    rows = list(rows[:MAX_MATCHES])
    # a key the host's key type no longer accepts: that image is gone
    keys = asset_pks(row.asset_id for row in rows)
    found = {str(pk): asset
             for pk, asset in visible_assets(search.project_id, user).in_bulk(keys).items()}
    return [
        Match(asset=found[row.asset_id], similarity=row.similarity,
              distance=1.0 - row.similarity)
        for row in rows if row.asset_id in found
    ]
