"""Saved searches and outside-image queries of projects the host deleted."""

from __future__ import annotations

import logging

from similarity.host.models import get_project_model
from similarity.host.scopes import NO_PROJECT, get_project
from similarity.models import QueryImage, SavedSearch

logger = logging.getLogger(__name__)


def forget_deleted_projects() -> int:
    """Delete (and count) the saved searches and outside-image queries of projects that no longer
    exist (the host deleted them; nothing of ours cascades from a host's project). Pages
    already answer 404 for them; this keeps the tables from growing. Runs in the sweep."""
    model = get_project_model()
    if model is None:
        return 0
    scopes = set(SavedSearch.objects.values_list("project_id", flat=True).distinct())
    scopes |= set(QueryImage.objects.values_list("project_id", flat=True).distinct())
    scopes.discard(NO_PROJECT)
    gone = [scope for scope in scopes if get_project(scope) is None]
    if not gone:
        return 0
    searches = SavedSearch.objects.filter(project_id__in=gone).delete()[1]
    deleted = searches.get(SavedSearch._meta.label, 0)
    images = QueryImage.objects.filter(project_id__in=gone).delete()[1]
    logger.info("Forgot %d saved searches and %d query images of deleted projects %s",
                deleted, images.get(QueryImage._meta.label, 0), gone)
    return deleted
