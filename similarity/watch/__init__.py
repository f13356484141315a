"""Saved searches that watch new uploads.

Saving keeps the unit query vector (examples and counter-examples through
``search.query.selection_vector``, or an outside image's ``QueryImage`` vector) with the
model that made it (``saving``). When the worker has written a batch of new vectors, it
announces the batch and ``matching.check_new`` compares that batch only with every
unmuted saved search of the project made by the same model, and notifies each owner once
per batch. Saved vectors follow model changes (``vectors``); ``reading`` is what their
owner sees; ``housekeeping`` forgets searches of deleted projects.
"""

from similarity.watch.housekeeping import forget_deleted_projects
from similarity.watch.matching import batch_id, check_new
from similarity.watch.reading import own_search, visible_matches
from similarity.watch.saving import (
    NAME_MAX_LENGTH,
    SaveError,
    clean_name,
    clean_threshold,
    rename,
    save_search,
    threshold_of,
)
from similarity.watch.vectors import needs_resave, refresh_vector

__all__ = [
    "NAME_MAX_LENGTH",
    "SaveError",
    "batch_id",
    "check_new",
    "clean_name",
    "clean_threshold",
    "forget_deleted_projects",
    "needs_resave",
    "own_search",
    "refresh_vector",
    "rename",
    "save_search",
    "threshold_of",
    "visible_matches",
]
