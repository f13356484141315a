"""Saved searches that watch new uploads: save a query, match each batch of new images.

Saving keeps the unit query vector (examples and counter-examples through
``search.selection_vector``, or an outside image's ``QueryImage`` vector) with the model
that made it. When the worker has written a batch of new vectors, ``check_new`` compares
that batch only (one matrix product in NumPy, never a re-search of the project) with every
unmuted saved search of the project made by the same model:

- order "most": a new image matches when ``similarity >= threshold``;
- order "least": a new image matches when ``similarity <= threshold`` (it looks *unlike*
  the query: the watch for anomalies);
- without a threshold, ``WATCH_THRESHOLD`` (most) or ``WATCH_LEAST_THRESHOLD`` (least).

The search's own examples and counter-examples never match it. Matches become
``SavedSearchMatch`` rows (once per search and asset) and exactly one notification per
saved search and batch, to its owner only, keyed by the batch so a batch checked twice
(a task delivered twice) never notifies twice. Images re-embedded because the model changed
are not new uploads: they carry a row of the previous model and are skipped.

A model change leaves saved vectors of the old model: they are recomputed from their
examples once those are embedded by the new model (``refresh_vector``); a search made from
an outside image cannot be (its image was not kept) and must be saved again
(``needs_resave``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from similarity import registry
from similarity.access import get_access_policy
from similarity.conf import similarity_settings
from similarity.models import Embedding
from similarity.notifications import notify
from similarity.query_models import QueryImage, SavedSearch, SavedSearchMatch
from similarity.search import ORDERS, SearchError, combine, selection_vector, serving_key
from similarity.shortcuts import check_project, get_assets_for

logger = logging.getLogger(__name__)

#: Batch ids are derived from the batch's embedding rows, so the same batch always gets
#: the same id (and the same notification key).
BATCH_NAMESPACE = uuid.UUID("6f0f7a52-3c1e-4d8e-9a53-5a1d0c8f1e27")
NAME_MAX_LENGTH = 200


class SaveError(ValueError):
    """A saved search that cannot be saved; ``str()`` is the message for the user."""


# --- saving --------------------------------------------------------------------------


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
    order: str = "most",
    threshold: Any = None,
) -> SavedSearch:
    """Save a query of a project for ``user``; the vector is recomputed here, never sent.

    Examples go through the access policy (another project's asset or one the user may not
    see: 404); an outside image must be the user's own ``QueryImage`` of that project.
    Raises Http404, or SaveError saying what to fix.
    """
    project_id = str(project_id)
    check_project(user, project_id)
    name = clean_name(name)
    threshold = clean_threshold(threshold)
    if order not in ORDERS:
        raise SaveError(_("order must be 'most' or 'least'."))

    def assets(ids: Iterable[Any]) -> list:  # one query; 404 if hidden or elsewhere
        return get_assets_for(user, project_id, list(dict.fromkeys(str(pk) for pk in ids if pk)))

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
            raise Http404("Not found.")
    if query_image is not None and query_image.vector is None:
        raise SaveError(_("The uploaded image is not embedded yet; try again in a moment."))
    if not positives and query_image is None:
        raise SaveError(_("There is nothing to save: search with an image first."))
    if _name_taken(user, project_id, name):
        raise SaveError(_taken_message(name))
    try:
        image_vector = None if query_image is None else _as_unit(query_image.vector)
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


# --- vectors ------------------------------------------------------------------------


def _as_unit(vector: Any) -> np.ndarray:
    array = np.asarray(
        vector.to_list() if hasattr(vector, "to_list") else vector, dtype=np.float32
    )
    return array / (float(np.linalg.norm(array)) or 1.0)


def _to_pk(raw: str) -> Any:
    return registry.get_asset_model()._meta.pk.to_python(raw)


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
    return [_as_unit(found[str(pk)]) for pk in pks]


def refresh_vector(search: SavedSearch, model_key: str) -> bool:
    """Recompute the vector for ``model_key`` from the search's examples, if possible.

    True when the search now has a vector of that model (it had one already, or its
    examples are all embedded by it). An outside image's search can only be refreshed when
    its QueryImage was made by that model.
    """
    if search.model_key == model_key and search.vector is not None:
        return True
    try:
        positives = _rows_vectors([_to_pk(pk) for pk in search.positive_ids], model_key)
        negatives = _rows_vectors([_to_pk(pk) for pk in search.negative_ids], model_key)
        if search.query_image_id:
            image = search.query_image
            if image is None or image.model_key != model_key:
                return False
            positives.append(_as_unit(image.vector))
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


def needs_resave(search: SavedSearch, serving: str | None = None) -> bool:
    """Whether the search is stuck on a model its project no longer serves (``serving``:
    that model's key, when the caller has read it already)."""
    key = serving or serving_key(search.project_id)
    return search.model_key != key and not refresh_vector(search, key)


# --- watching -----------------------------------------------------------------------


def batch_id(project_id: str, embedding_row_ids: Iterable[int]) -> uuid.UUID:
    rows = ",".join(str(pk) for pk in sorted(int(pk) for pk in embedding_row_ids))
    return uuid.uuid5(BATCH_NAMESPACE, f"{project_id}:{rows}")


def matches_url(search: SavedSearch, batch: uuid.UUID | None = None) -> str:
    try:
        url = reverse("similarity:saved-search-matches", args=[search.pk])
    except NoReverseMatch:  # the host did not include similarity.urls under its namespace
        return ""
    return f"{url}?batch={batch}" if batch else url


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
    # Re-embeds for a new model carry a row of the previous model: not new uploads.
    renewed = set(
        Embedding.objects.filter(asset_id__in=[row[0] for row in rows])
        .exclude(model_key__in={row[1] for row in rows})
        .values_list("asset_id", flat=True)
    )
    # Only assets still in the project count (deleted or moved meanwhile: skipped).
    live = set(
        registry.project_assets(project_id)
        .filter(pk__in=[row[0] for row in rows if row[0] not in renewed])
        .values_list("pk", flat=True)
    )
    batch = batch_id(project_id, row_ids)
    policy = get_access_policy()
    allowed: dict[Any, bool] = {}  # owner id -> may still see the project (asked once)
    sent = 0
    by_model: dict[str, list[tuple[Any, Any]]] = {}
    for asset_id, model_key, vector in rows:
        if asset_id in live and vector is not None:
            by_model.setdefault(model_key, []).append((asset_id, vector))
    for model_key, items in by_model.items():
        asset_ids = [asset_id for asset_id, _ in items]
        matrix = np.stack([_as_unit(vector) for _, vector in items])
        for search in searches:
            if search.owner_id not in allowed:
                allowed[search.owner_id] = policy.can_view(search.owner, project_id)
            if not allowed[search.owner_id]:
                continue  # the owner lost access to the project: nothing to tell them
            if search.model_key != model_key and not refresh_vector(search, model_key):
                continue
            if search.vector is None or _as_unit(search.vector).shape[0] != matrix.shape[1]:
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
    similarities = matrix @ _as_unit(search.vector)
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
            search.owner, registry.project_assets(search.project_id)
        ).filter(pk__in=[_to_pk(pk) for pk in found])
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
    if search.order == SavedSearch.Order.LEAST:
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
        url=matches_url(search, batch),
        key=f"similarity-watch:{search.pk}:{batch}",
        recipient=search.owner,
    )
    return 1 if notification is not None else 0


def forget_deleted_projects() -> int:
    """Delete (and count) the saved searches and outside-image queries of projects that no longer
    exist (the host deleted them; nothing of ours cascades from a host's project). Pages
    already answer 404 for them; this keeps the tables from growing. Runs in the sweep."""
    model = registry.get_project_model()
    if model is None:
        return 0
    scopes = set(SavedSearch.objects.values_list("project_id", flat=True).distinct())
    scopes |= set(QueryImage.objects.values_list("project_id", flat=True).distinct())
    scopes.discard(registry.NO_PROJECT)
    gone = [scope for scope in scopes if registry.get_project(scope) is None]
    if not gone:
        return 0
    searches = SavedSearch.objects.filter(project_id__in=gone).delete()[1]
    deleted = searches.get(SavedSearch._meta.label, 0)
    images = QueryImage.objects.filter(project_id__in=gone).delete()[1]
    logger.info("Forgot %d saved searches and %d query images of deleted projects %s",
                deleted, images.get(QueryImage._meta.label, 0), gone)
    return deleted
