"""Where two images match: a result's patch grid scored against a query, kept on demand.

A map is computed when someone asks "Show match" (never for every image) and kept per
pair, side, region and model, so reopening it, switching between the JSON and the PNG,
or another user with the same access costs nothing. The key covers both files' names,
so a replaced file is a new map. The sweep forgets maps after ``QUERY_IMAGE_HOURS``.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from similarity.models.embeddings import SCOPE_MAX_LENGTH


class MatchMap(models.Model):
    """Cosine similarity of a query vector to each patch token of one image."""

    class Side(models.TextChoices):
        RESULT = "result", _("on the result")
        QUERY = "query", _("on the query")

    class QueryKind(models.TextChoices):
        ASSET = "asset", _("an image of the project")
        IMAGE = "image", _("a query image")

    key = models.CharField(max_length=64, unique=True)
    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, db_index=True)
    model_key = models.CharField(_("model"), max_length=200)
    query_kind = models.CharField(max_length=5, choices=QueryKind.choices)
    query_id = models.CharField(max_length=SCOPE_MAX_LENGTH)
    result_id = models.CharField(max_length=SCOPE_MAX_LENGTH)
    region = ArrayField(models.FloatField(), size=4, null=True, blank=True)
    side = models.CharField(max_length=6, choices=Side.choices, default=Side.RESULT)
    #: The grid (rows x columns of patches), float16, row-major; empty until computed.
    rows = models.PositiveSmallIntegerField(null=True, blank=True)
    columns = models.PositiveSmallIntegerField(null=True, blank=True)
    values = models.BinaryField(blank=True, default=b"")
    #: The size of the image the map covers, as a person sees it (the overlay's shape).
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    #: Why the worker could not compute it (the web process reports it, then deletes the row).
    error = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("match map")
        verbose_name_plural = _("match maps")

    def __str__(self) -> str:
        return f"{self.query_kind} {self.query_id} ~ {self.result_id} ({self.side})"
