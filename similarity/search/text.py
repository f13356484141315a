"""Search a project by describing what to find ("cracked casing"), with the text model.

The description is checked (not empty, at most ``TEXT_QUERY_MAX_CHARS`` characters, no
control characters), put in one form (NFKC, single spaces) and embedded by the text
model's text tower, where ``QUERY_EMBEDDING`` says: in the worker (default: a task on the
query cluster, polled like an outside image's) or in the web process (the text tower
only; the image towers never load there). The vector is kept in a ``TextQuery`` row per
model and text, so the same description is embedded once, whichever page asks. The
project is then ranked against the images' vectors of the same model: scores are
cosine similarities in the text model's space (lower than image-to-image ones; a good
match between a text and an image is often around 0.1 to 0.2 for SigLIP).
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from similarity.conf import similarity_settings
from similarity.models import ProjectReadiness, TextQuery
from similarity.search.outside import (
    MODES,
    QueryUnavailable,
    queue_query_task,
    wait_for_answer,
)
from similarity.search.ranking import rank
from similarity.search.results import SearchError, SearchResult
from similarity.vectors.math import unit
from similarity.vectors.model_keys import ModelLoadError, text_model_key
from similarity.vectors.text_model import get_text_tower, normalise_text

logger = logging.getLogger(__name__)

EMBED_TEXT_TASK = "similarity.tasks.embed_text_query"
POLL_INTERVAL = 0.02


class TextSearchOff(SearchError):
    """No text model is configured: the box is hidden and the API says so."""

    code = "text_search_off"


def enabled() -> bool:
    """Whether a text model is configured (the pages show the description box)."""
    return text_model_key() is not None


def clean_text(text: Any) -> str:
    """The description as it is searched, or SearchError naming what is wrong with it."""
    if not isinstance(text, str):
        raise SearchError(_("Describe what you are looking for in words (text)."))
    limit = int(similarity_settings.TEXT_QUERY_MAX_CHARS)
    if len(text) > limit:
        raise SearchError(
            _("The description is %(length)d characters long; the most is %(limit)d.")
            % {"length": len(text), "limit": limit})
    controls = {ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf")
                and ch not in "\t\n\r"}
    if controls:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in sorted(controls)[:3])
        raise SearchError(
            _("The description contains control characters (%(chars)s); type plain text.")
            % {"chars": shown})
    cleaned = normalise_text(text)
    if not cleaned:
        raise SearchError(_("Describe what you are looking for: the description is empty."))
    return cleaned


def text_vector(text: str) -> tuple[np.ndarray, str]:
    """The unit vector of a cleaned description and the text model's key that made it."""
    key = text_model_key()
    if key is None:
        raise TextSearchOff(_("Text search is not configured: set "
                              "SIMILARITY['TEXT_MODEL_NAME'] to a SigLIP checkpoint."))
    known = TextQuery.objects.filter(model_key=key, text=text, vector__isnull=False).first()
    if known is not None:
        return unit(known.vector), key
    mode = similarity_settings.QUERY_EMBEDDING
    if mode not in MODES:
        raise QueryUnavailable(text, f"SIMILARITY['QUERY_EMBEDDING'] must be one of "
                                     f"{', '.join(MODES)}, not {mode!r}")
    if mode == "web":
        vector = _embed_here(text, key)
        _store(key, text, vector)
        return unit(vector), key
    return unit(_embed_in_worker(text, key)), key


def _embed_here(text: str, key: str) -> np.ndarray:
    try:
        tower = get_text_tower()
    except ModelLoadError as exc:
        raise QueryUnavailable(text, f"the text model could not be loaded: {exc}") from exc
    return tower.embed_texts([text])[0]


def _store(key: str, text: str, vector: np.ndarray) -> None:
    """Keep the vector for the next time (one INSERT; a concurrent request that stored
    the same description first wins: its vector is the same)."""
    values = np.asarray(vector, dtype=np.float32).tolist()
    TextQuery.objects.bulk_create([TextQuery(model_key=key, text=text, vector=values)],
                                  ignore_conflicts=True)


def _embed_in_worker(text: str, key: str) -> np.ndarray:
    """Queue the description for the worker's loaded text tower and poll for its vector;
    a late answer after the timeout is dropped with its row."""
    try:
        with transaction.atomic():
            query, _created = TextQuery.objects.get_or_create(model_key=key, text=text)
    except IntegrityError:
        query = TextQuery.objects.get(model_key=key, text=text)
    if query.vector is None:
        TextQuery.objects.filter(pk=query.pk).update(error="")
        try:
            queue_query_task(EMBED_TEXT_TASK, query.pk, name=f"embed text query {query.pk}")
        except Exception as exc:  # the broker is down: nothing half-written stays
            TextQuery.objects.filter(pk=query.pk, vector__isnull=True).delete()
            logger.exception("Could not queue the text query %s", query.pk)
            raise QueryUnavailable(text, f"the background worker's queue is unavailable "
                                         f"({type(exc).__name__}); try again shortly") from exc
    vector = wait_for_answer(TextQuery.objects.filter(pk=query.pk), text,
                             interval=POLL_INTERVAL)
    return np.asarray(vector.to_list() if hasattr(vector, "to_list") else vector,
                      dtype=np.float32)


def embed_queued(query_id: int) -> bool:
    """The worker's half: embed a queued description with the loaded text tower and write
    the vector (or why it cannot). False when the row is gone (the web gave up)."""
    query = TextQuery.objects.filter(pk=query_id, vector__isnull=True).first()
    if query is None:
        return False
    update: dict[str, Any]
    try:
        tower = get_text_tower()
        if tower.model_key != query.model_key:
            update = {"error": f"the worker embeds text with {tower.model_key}, not "
                               f"{query.model_key}; restart the web processes or the worker"}
        else:
            update = {"vector": tower.embed_texts([query.text])[0].astype(np.float32).tolist()}
    except ModelLoadError as exc:
        update = {"error": f"the worker could not load the text model: {exc}"}
    return bool(TextQuery.objects.filter(pk=query_id, vector__isnull=True).update(**update))


def search_text(
    project_id: str,
    text: str,
    *,
    state: ProjectReadiness | None,
    order: str = "most",
    limit: int = 100,
    user: Any = None,
    within: QuerySet | None = None,
) -> SearchResult:
    """Rank the project's images against a description (the shared core of the API, the
    pages and saved searches). ``state`` is the text model's readiness in the scope
    (``embedding.readiness.text_readiness``: its counts and cache version); the caller
    has checked access to the project."""
    text = clean_text(text)
    vector, key = text_vector(text)
    result = rank(project_id, vector, order=order, limit=limit, within=within, user=user,
                  state=state, model_key=key)
    result.text = text
    return result


def purge_expired(now: Any = None) -> int:
    """Delete text queries older than ``QUERY_IMAGE_HOURS`` (saved searches keep their
    own copy of the vector)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=float(similarity_settings.QUERY_IMAGE_HOURS))
    _total, per_model = TextQuery.objects.filter(created__lt=cutoff).delete()
    return per_model.get(TextQuery._meta.label, 0)
