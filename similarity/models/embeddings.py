"""Embeddings beside the host's assets, and each scope's readiness derived from them.

The host's asset table is never altered. Embeddings live in a side table with one row
per (asset, model key), so list pages don't drag 384 floats per row and a new model's
vectors can be computed beside the old ones while search keeps serving the old ones.
The vector column has no fixed dimension; each per-project HNSW index casts it to the
model's dimension (see ``similarity.vectors.hnsw``), so changing the model needs no migration.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField

from similarity.conf import asset_model_setting

#: Scope ids are text: str() of the host's project key, whatever its type (4- or 8-byte
#: integers, UUIDs, strings), or ``similarity.host.scopes.SITE_SCOPE``.
SCOPE_MAX_LENGTH = 255


class Embedding(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Embedded")
        FAILED = "failed", _("Failed")

    asset = models.ForeignKey(
        asset_model_setting(),
        on_delete=models.CASCADE,
        related_name="similarity_embeddings",
        verbose_name=_("asset"),
    )
    model_key = models.CharField(_("model"), max_length=200)
    # Denormalised from the asset, so a project-scoped search reads this table alone.
    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH)
    # The asset's file name when the row was (re)scheduled: a different name on the asset
    # means a new file, so the vector is stale (the sweep compares them in SQL).
    source = models.CharField(_("file"), max_length=500, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    error = models.TextField(_("reason"), blank=True)
    vector = HalfVectorField(null=True, blank=True)
    dims = models.PositiveSmallIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A worker's claim on a pending row; an expired claim means the worker died.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("embedding")
        verbose_name_plural = _("embeddings")
        constraints = [
            models.UniqueConstraint(fields=["asset", "model_key"], name="similarity_one_per_model"),
        ]
        indexes = [
            models.Index(fields=["project_id", "model_key", "status"], name="similarity_scope"),
            models.Index(fields=["status", "updated"], name="similarity_sweep"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} [{self.model_key}] {self.status}"


class ProjectReadiness(models.Model):
    """Derived per-project state; recomputed from the embedding rows, never counted up."""

    class State(models.TextChoices):
        EMPTY = "empty", _("No images")
        COMPUTING = "computing", _("Computing embeddings")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, unique=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.EMPTY
    )
    model_key = models.CharField(_("current model"), max_length=200, blank=True)
    # The model whose vectors search serves: the previous one until the current is ready.
    active_model_key = models.CharField(_("serving model"), max_length=200, blank=True)
    total = models.PositiveIntegerField(default=0)
    embedded = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(_("error"), blank=True)
    indexed_model_key = models.CharField(max_length=200, blank=True)
    #: Why the text model (TEXT_MODEL_NAME) cannot embed this scope's images, if it
    #: cannot; image search goes on regardless.
    text_error = models.TextField(_("text model error"), blank=True, default="")
    # Counts computing episodes, so each episode's notifications get their own keys.
    episode = models.PositiveIntegerField(default=0)
    # Rows already finished when the episode began: "computing N images" counts the rest.
    episode_base = models.PositiveIntegerField(default=0)
    # When an embedding task was last queued for the project (deduplicates enqueues).
    queued_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(_("last change"), auto_now=True)

    class Meta:
        verbose_name = _("project readiness")
        verbose_name_plural = _("project readiness")

    def __str__(self) -> str:
        return f"project {self.project_id}: {self.state} {self.embedded}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * (self.embedded + self.failed) / self.total)

    @property
    def error_summary(self) -> str:
        """The error's first line: one plain sentence with the cause and what to do."""
        return self.error.split("\n", 1)[0].strip()

    @property
    def error_details(self) -> str:
        """The rest (the library's own words), shown behind a disclosure."""
        parts = self.error.split("\n", 1)
        return parts[1].strip() if len(parts) > 1 else ""
