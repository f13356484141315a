"""Follow host changes that fired no signal (``update()``, raw SQL, other services).

Our rows are compared with the host's table in SQL, a few statements whatever the number
of rows: rows of assets that are no longer images are deleted, rows whose asset moved to
another project move with it, and rows whose asset has another file are re-embedded (or,
for another model's rows, dropped). The sweep runs this; each kind of drift is capped per
run (``MAX_ROWS``), so a huge bulk change is followed over a few sweeps, never in one
transaction that holds the table.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db.models import CharField, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.embedding import readiness
from similarity.host.files import source_of_sql
from similarity.host.models import get_asset_model, image_assets, project_lookup
from similarity.host.scopes import NO_PROJECT, SITE_SCOPE
from similarity.models import Embedding
from similarity.vectors.model_keys import current_model_keys

logger = logging.getLogger(__name__)

#: Rows of one kind of drift followed per run.
MAX_ROWS = 10_000
#: Deletes count our own rows by this label (a cascade to other tables never inflates it).
EMBEDDING_LABEL = Embedding._meta.label


def _live(column: str) -> Subquery:
    """The asset's current value at an ORM path, as text, for comparing with our rows."""
    assets = get_asset_model()._default_manager.filter(pk=OuterRef("asset_id"))
    return Subquery(assets.values(value=Cast(column, CharField()))[:1])


def _live_scope() -> Any:
    lookup = project_lookup()
    return Value(SITE_SCOPE) if lookup is None else Coalesce(_live(lookup), Value(NO_PROJECT))


def remove_non_images() -> tuple[int, set[str]]:
    """Delete rows of assets that are gone or stopped being images (IS_IMAGE)."""
    rows = Embedding.objects.exclude(asset_id__in=image_assets().values("pk"))
    touched = set(rows.values_list("project_id", flat=True).distinct())
    removed = rows.delete()[1].get(EMBEDDING_LABEL, 0) if touched else 0
    return removed, touched


def follow_moves() -> tuple[int, set[str]]:
    """Rows whose asset is now in another scope take its scope: one UPDATE per scope the
    rows moved to (the vector is still right for the file: nothing is re-embedded)."""
    drifted = Embedding.objects.annotate(live=_live_scope()).exclude(project_id=F("live"))
    by_target: dict[str, list[int]] = defaultdict(list)
    touched: set[str] = set()
    for pk, old, new in drifted.values_list("pk", "project_id", "live")[:MAX_ROWS]:
        by_target[new].append(pk)
        touched |= {old, new}
    now = timezone.now()  # caches follow rows by `updated`
    moved = sum(Embedding.objects.filter(pk__in=pks).update(project_id=target, updated=now)
                for target, pks in by_target.items())
    return moved, touched


def follow_new_files() -> tuple[int, set[str]]:
    """Rows computed from another file than the asset holds now: the current model's are
    re-embedded from the new file, other models' (which would describe the old picture)
    are deleted. Two statements."""
    field = similarity_settings.IMAGE_FIELD
    stale = (
        Embedding.objects.exclude(source="")
        .annotate(live=source_of_sql(_live(field)))
        .exclude(source=F("live"))
    )
    found = list(stale.values_list("pk", "project_id", "model_key")[:MAX_ROWS])
    if not found:
        return 0, set()
    keys = set(current_model_keys())
    current = [pk for pk, _scope, model_key in found if model_key in keys]
    others = [pk for pk, _scope, model_key in found if model_key not in keys]
    if others:
        Embedding.objects.filter(pk__in=others).delete()
    if current:
        Embedding.objects.filter(pk__in=current).update(
            status=Embedding.Status.PENDING, vector=None, dims=None, error="", attempts=0,
            claimed_until=None, source=source_of_sql(_live(field)),
            updated=timezone.now(),
        )
    return len(found), {scope for _pk, scope, _model in found}


def record_missing_sources() -> int:
    """Rows written before file names were recorded take the current name as theirs."""
    field = similarity_settings.IMAGE_FIELD
    return Embedding.objects.filter(source="").update(
        source=source_of_sql(_live(field)))


def repair_drift() -> dict[str, int]:
    """Every kind of drift, then a recount of the scopes touched; returns the counts."""
    removed, touched = remove_non_images()
    moved, scopes = follow_moves()
    touched |= scopes
    refiled, scopes = follow_new_files()
    touched |= scopes
    record_missing_sources()
    for scope in sorted(touched):
        readiness.refresh(scope, changed=True)
    if removed or moved or refiled:
        logger.info(
            "Sweep followed host changes: %d rows of non-images removed, %d moved, %d new "
            "files re-embedded", removed, moved, refiled,
        )
    return {"removed": removed, "moved": moved, "refiled": refiled}
