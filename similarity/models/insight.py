"""Tables of the dataset insight stage: neighbour lists, the stage's state, marks, map.

Rows are keyed by our own ``Embedding`` row (a 64-bit id), never by the host's asset key,
whose type we don't know; neighbour ids are embedding row ids too and are mapped to assets
on read.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from similarity.models.embeddings import SCOPE_MAX_LENGTH, Embedding


class Neighbours(models.Model):
    """One embedded image's k nearest neighbours in its scope (cosine, like search)."""

    # No database constraint and no ORM cascade: deleting embeddings (purges, host deletes)
    # must not cost a second DELETE or change what those deletes count. Lists of rows that
    # are gone are removed by the next analysis of their scope, or by the sweep.
    embedding = models.OneToOneField(
        Embedding, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True,
        related_name="neighbours",
    )
    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH)
    model_key = models.CharField(_("model"), max_length=200)
    #: Embedding row ids of the neighbours, nearest first.
    neighbour_ids = ArrayField(models.BigIntegerField(), default=list)
    #: Cosine similarities, in the same order.
    similarities = ArrayField(models.FloatField(), default=list)
    #: Mean cosine distance to the neighbours: the "most unusual" ranking. Null when the
    #: scope has no other image.
    score = models.FloatField(null=True)
    #: Similarity of the k-th neighbour (-2 while the list is shorter than k): a new image
    #: enters this list only if it is more similar than this.
    kth = models.FloatField(default=-2.0)
    #: A fixed random projection of the vector the list was computed for; a different value
    #: means the image was re-embedded (a new file) and its list is stale.
    fingerprint = models.FloatField()
    #: SHA-256 of the file (byte-identical duplicates); "" until hashed, "-" if unreadable.
    file_hash = models.CharField(max_length=64, blank=True, default="")
    file_size = models.BigIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    #: Position on the project's 2-D map (PCA of the unit vectors, see similarity.map);
    #: null until the worker has projected this image.
    map_x = models.FloatField(null=True, blank=True)
    map_y = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("neighbour list")
        verbose_name_plural = _("neighbour lists")
        indexes = [
            models.Index(fields=["project_id", "model_key", "score"], name="similarity_insight_score"),
            models.Index(fields=["project_id", "model_key", "file_hash"],
                         name="similarity_insight_hash"),
        ]

    def __str__(self) -> str:
        return f"neighbours of row {self.embedding_id}"


class InsightState(models.Model):
    """Per-scope state of the insight stage, shown as "analysing N of M" and polled."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting for embeddings")
        ANALYSING = "analysing", _("Analysing")
        READY = "ready", _("Ready")

    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    model_key = models.CharField(max_length=200, blank=True)
    total = models.PositiveIntegerField(default=0)
    analysed = models.PositiveIntegerField(default=0)
    #: The readiness version (``ProjectReadiness.updated``) the stored lists describe.
    version = models.DateTimeField(null=True, blank=True)
    #: True once a complete analysis exists (results stay readable while it is refreshed).
    complete = models.BooleanField(default=False)
    episode = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    updated = models.DateTimeField(auto_now=True)
    #: When an insight task was queued (one waiting task per scope, like embedding).
    queued_at = models.DateTimeField(null=True, blank=True)
    #: A full build in progress, across tasks: the last row id (in id order) whose list
    #: is written; null when no full build is under way.
    build_cursor = models.BigIntegerField(null=True, blank=True)
    #: The database's clock before the first read of the pass under way: rows changed
    #: after it may be missing from lists written earlier in that pass.
    pass_started = models.DateTimeField(null=True, blank=True)
    #: The readiness version the pass under way started from.
    pass_version = models.DateTimeField(null=True, blank=True)
    #: Rows changed at or after this are merged again by the next incremental pass (a
    #: full build that spanned tasks while images arrived).
    fresh_since = models.DateTimeField(null=True, blank=True)
    #: The readiness episode last announced ("Duplicates and outliers are ready"), plus one
    #: (0: none yet).
    announced_episode = models.PositiveIntegerField(default=0)
    #: Tasks started on ``attempts_version`` (the readiness version) that did not finish
    #: a pass: a scope whose analysis keeps failing (out of memory, say) stops being
    #: retried at INSIGHT_MAX_ATTEMPTS until its images change.
    attempts = models.PositiveSmallIntegerField(default=0)
    attempts_version = models.DateTimeField(null=True, blank=True)
    #: Why the last attempt failed, for the page and the API ("" when it did not).
    error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("insight state")
        verbose_name_plural = _("insight states")

    def __str__(self) -> str:
        return f"insight {self.project_id}: {self.state} {self.analysed}/{self.total}"


class DuplicateMark(models.Model):
    """A reviewer's decision on one image of a duplicate group ("keep this one").

    The app never deletes the host's assets itself (it does not know the host's rules);
    it records which images are marked for deletion, for the host or a person to act on.
    A group whose members all carry a mark is hidden from the list.
    """

    class Mark(models.TextChoices):
        KEEP = "keep", _("Keep")
        DELETE = "delete", _("Marked for deletion")

    embedding = models.OneToOneField(  # no constraint or cascade: see Neighbours
        Embedding, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True,
        related_name="duplicate_mark",
    )
    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, db_index=True)
    mark = models.CharField(max_length=10, choices=Mark.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("duplicate mark")
        verbose_name_plural = _("duplicate marks")

    def __str__(self) -> str:
        return f"row {self.embedding_id}: {self.mark}"


class MapBasis(models.Model):
    """The PCA basis a scope's map was projected with (similarity.insight.map): the mean and the
    two principal directions of its unit vectors. New images are projected with it; it is
    refitted when the scope's size changed by more than MAP_REFIT_SHARE."""

    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, unique=True)
    model_key = models.CharField(max_length=200)
    #: float32 bytes: the mean (dims) then the two components (2 x dims).
    basis = models.BinaryField()
    dims = models.PositiveIntegerField()
    fitted_rows = models.PositiveIntegerField()
    #: Share of the variance the two components explain (shown on the page).
    explained = models.FloatField(default=0.0)
    fitted = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("map basis")
        verbose_name_plural = _("map bases")

    def __str__(self) -> str:
        return f"map basis {self.project_id}: {self.fitted_rows} rows"
