"""Whether each image can be searched right now, and why not, in one query per page.

The listing and the edit page show "Find similar" disabled with this reason while an
image is not embedded, instead of a link that ends in an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from similarity.embedding.worker_health import worker_silence
from similarity.host.scopes import SITE_SCOPE
from similarity.models import Embedding
from similarity.search import serving_key


@dataclass(frozen=True)
class ImageState:
    searchable: bool
    reason: str = ""
    failed: bool = False  # it will not become searchable without a retry


def image_states(image_pks: Iterable[Any]) -> dict[Any, ImageState]:
    """Map each image pk to its search state for the serving model."""
    pks = list(image_pks)
    if not pks:
        return {}
    rows = Embedding.objects.filter(asset_id__in=pks, model_key=serving_key(SITE_SCOPE))
    found = {pk: (status, error) for pk, status, error in rows.values_list(
        "asset_id", "status", "error")}
    states = {}
    waiting = _("Not analysed yet; searchable in a moment.")
    if any(found.get(pk, (None,))[0] not in (Embedding.Status.DONE, Embedding.Status.FAILED)
           for pk in pks) and worker_silence() is not None:
        waiting = _("Not analysed yet: no similarity worker is running (manage.py qcluster).")
    for pk in pks:
        status, error = found.get(pk, (None, ""))
        if status == Embedding.Status.DONE:
            states[pk] = ImageState(True)
        elif status == Embedding.Status.FAILED:
            states[pk] = ImageState(
                False, _("Could not be analysed: %(reason)s") % {"reason": error or _("unknown")},
                failed=True,
            )
        else:
            states[pk] = ImageState(False, waiting)
    return states
