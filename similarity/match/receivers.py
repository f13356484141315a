"""What the match maps follow: the sweep forgets maps computed more than
``QUERY_IMAGE_HOURS`` ago (asked for again, they are computed again)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from similarity.conf import similarity_settings
from similarity.models import MatchMap


def purge_expired(now: Any = None) -> int:
    """Delete maps computed more than ``QUERY_IMAGE_HOURS`` ago (cheap to compute again)."""
    cutoff = (now or timezone.now()) - timedelta(hours=float(similarity_settings.QUERY_IMAGE_HOURS))
    return MatchMap.objects.filter(created__lt=cutoff).delete()[1].get(MatchMap._meta.label, 0)


def connect() -> None:
    from similarity.embedding import sweep

    sweep.register_step("match maps", lambda: {"match_maps": purge_expired()})
