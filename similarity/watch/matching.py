"""Watching: each batch of newly embedded images matched against the project's saved
searches, one matrix product in NumPy (never a re-search of the project).

- order "most": a new image matches when ``similarity >= threshold``;
- order "least": a new image matches when ``similarity <= threshold`` (it looks *unlike*
  the query: the watch for anomalies);
- without a threshold, ``WATCH_THRESHOLD`` (most) or ``WATCH_LEAST_THRESHOLD`` (least).

The search's own examples and counter-examples never match it. Matches become
``SavedSearchMatch`` rows (once per search and asset) and exactly one notification per
saved search and batch, to its owner only, keyed by the batch so a batch checked twice
(a task delivered twice) never notifies twice. Images re-embedded because the model changed
are not new uploads: they carry a row of the previous model and are skipped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.utils.translation import ngettext

from similarity.embedding.notifications import notify
from similarity.host.access import get_access_policy
from similarity.host.links import saved_search_matches_url
from similarity.host.models import asset_pk
from similarity.host.scopes import project_assets
from similarity.models import Embedding, SavedSearch, SavedSearchMatch
from similarity.vectors.math import unit
from similarity.vectors.model_keys import current_model_keys, text_model_key
from similarity.watch.saving import threshold_of
from similarity.watch.vectors import refresh_vector

logger = logging.getLogger(__name__)

#: Batch ids are derived from the batch's embedding rows, so the same batch always gets
#: the same id (and the same notification key).
BATCH_NAMESPACE = uuid.UUID("6f0f7a52-3c1e-4d8e-9a53-5a1d0c8f1e27")


def batch_id(project_id: str, embedding_row_ids: Iterable[int]) -> uuid.UUID:
    rows = ",".join(str(pk) for pk in sorted(int(pk) for pk in embedding_row_ids))
    return uuid.uuid5(BATCH_NAMESPACE, f"{project_id}:{rows}")


def check_new(project_id: str, embedding_row_ids: Iterable[int]) -> int:
    """Match a batch of newly embedded rows against the project's saved searches.

    Called by the worker after it wrote the batch; returns the number of notifications
    sent. Never raises: a problem here is logged and embedding goes on.
    """
    try:
        return _check_new(str(project_id), [int(pk) for pk in embedding_row_ids])
    except Exception:
        logger.exception("Saved searches of project %s: checking new images failed", project_id)
        return 0


def _check_new(project_id: str, row_ids: list[int]) -> int:
    if not row_ids:
        return 0
    searches = list(SavedSearch.objects.filter(project_id=project_id, muted=False)
                    .select_related("owner", "query_image"))
    if not searches:
        return 0
    rows = list(
        Embedding.objects.filter(
            pk__in=row_ids, project_id=project_id, status=Embedding.Status.DONE
        ).values_list("asset_id", "model_key", "vector")
    )
    if not rows:
        return 0
    # Re-embeds for a new model carry a row of the previous model: not new uploads (the
    # text model's row of the same asset is not a previous model's).
    renewed = set(
        Embedding.objects.filter(asset_id__in=[row[0] for row in rows])
        .exclude(model_key__in={row[1] for row in rows} | set(current_model_keys()))
        .values_list("asset_id", flat=True)
    )
    # Only assets still in the project count (deleted or moved meanwhile: skipped).
    live = set(
        project_assets(project_id)
        .filter(pk__in=[row[0] for row in rows if row[0] not in renewed])
        .values_list("pk", flat=True)
    )
    batch = batch_id(project_id, row_ids)
    policy = get_access_policy()
    allowed: dict[Any, bool] = {}  # owner id -> may still see the project (asked once)
    sent = 0
    text_key = text_model_key()
    by_model: dict[str, list[tuple[Any, Any]]] = {}
    for asset_id, model_key, vector in rows:
        if asset_id in live and vector is not None:
            by_model.setdefault(model_key, []).append((asset_id, vector))
    for model_key, items in by_model.items():
        asset_ids = [asset_id for asset_id, _ in items]
        matrix = np.stack([unit(vector) for _, vector in items])
        for search in searches:
            if search.owner_id not in allowed:
                allowed[search.owner_id] = policy.can_view(search.owner, project_id)
            if not allowed[search.owner_id]:
                continue  # the owner lost access to the project: nothing to tell them
            if bool(search.text) != (model_key == text_key):
                continue  # descriptions watch the text model's rows, images the others
            if search.model_key != model_key and not refresh_vector(search, model_key,
                                                                    may_load=True):
                continue
            if search.vector is None or unit(search.vector).shape[0] != matrix.shape[1]:
                continue
            try:
                sent += _record(search, asset_ids, matrix, batch)
            except Exception:  # one broken search never stops the others
                logger.exception("Saved search %s: checking new images failed", search.pk)
    return sent


def _record(search: SavedSearch, asset_ids: list[Any], matrix: np.ndarray,
            batch: uuid.UUID) -> int:
    """Store this batch's matches of one search and notify its owner once; 1 if notified."""
    policy = get_access_policy()
    similarities = matrix @ unit(search.vector)
    cut = threshold_of(search)
    if search.order == SavedSearch.Order.LEAST:
        hit = similarities <= cut
    else:
        hit = similarities >= cut
    own = set(search.positive_ids) | set(search.negative_ids)
    found = {
        str(asset_id): float(similarity)
        for asset_id, similarity, matched in zip(asset_ids, similarities, hit, strict=True)
        if matched and str(asset_id) not in own
    }
    if found and policy.narrows_assets:
        visible = policy.filter_assets(
            search.owner, project_assets(search.project_id)
        ).filter(pk__in=[asset_pk(pk) for pk in found])
        seen = {str(pk) for pk in visible.values_list("pk", flat=True)}
        found = {pk: sim for pk, sim in found.items() if pk in seen}
    if not found:
        return 0
    already = set(
        SavedSearchMatch.objects.filter(saved_search=search, asset_id__in=list(found))
        .values_list("asset_id", flat=True)
    )
    new = {pk: sim for pk, sim in found.items() if pk not in already}
    if not new:
        return 0
    SavedSearchMatch.objects.bulk_create(
        [SavedSearchMatch(saved_search=search, asset_id=pk, similarity=sim, batch=batch)
         for pk, sim in new.items()],
        ignore_conflicts=True,
    )
    count = SavedSearchMatch.objects.filter(saved_search=search, batch=batch).count()
    if search.text and search.order == SavedSearch.Order.LEAST:
        message = ngettext(
            "%(count)d new image does not match “%(name)s”",
            "%(count)d new images do not match “%(name)s”", count,
        )
    elif search.text:
        message = ngettext(
            "%(count)d new image matches “%(name)s”",
            "%(count)d new images match “%(name)s”", count,
        )
    elif search.order == SavedSearch.Order.LEAST:
        message = ngettext(
            "%(count)d new image looks unlike “%(name)s”",
            "%(count)d new images look unlike “%(name)s”", count,
        )
    else:
        message = ngettext(
            "%(count)d new image looks like “%(name)s”",
            "%(count)d new images look like “%(name)s”", count,
        )
    notification = notify(
        search.project_id,
        message % {"count": count, "name": search.name},
        url=saved_search_matches_url(search.pk, batch) or "",
        key=f"similarity-watch:{search.pk}:{batch}",
        recipient=search.owner,
    )
    return 1 if notification is not None else 0
