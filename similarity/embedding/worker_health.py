"""Whether a django-q2 cluster is running, told from django-q2's own schedule table.

A page that says "searchable in a moment" while no worker runs says it for ever. The
cluster's scheduler (its own process, running even while every worker is busy) moves the
sweep's ``Schedule.next_run`` forward each time it queues the sweep, every
``SWEEP_MINUTES``; a ``next_run`` long past means no cluster has run its scheduler since.
The schedule lives in the ORM whatever the broker, and nothing new is written.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

#: How late the sweep's schedule may be before it counts as silence: the scheduler looks
#: at due schedules every ~30 s, and a cluster restarting takes a while.
GRACE = timedelta(minutes=3)


def worker_silence() -> timedelta | None:
    """How long no cluster has been seen, or None when one ran its scheduler lately, when
    tasks run in-process (``Q_CLUSTER["sync"]``), or when django-q2's table cannot tell."""
    if getattr(settings, "Q_CLUSTER", {}).get("sync"):
        return None
    from similarity.embedding.sweep import SCHEDULE_NAME

    try:
        from django_q.models import Schedule

        next_run = Schedule.objects.filter(name=SCHEDULE_NAME).values_list(
            "next_run", flat=True).first()
    except Exception:  # django_q not migrated on this database: we cannot tell
        logger.debug("Could not read django-q2's schedule for the worker's health", exc_info=True)
        return None
    if next_run is None:
        return None
    late = timezone.now() - next_run
    return late if late > GRACE else None


def silence_minutes() -> int | None:
    """``worker_silence`` in whole minutes, for a sentence on a page."""
    silence = worker_silence()
    return None if silence is None else int(silence.total_seconds() // 60)
