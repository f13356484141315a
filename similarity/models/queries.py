"""Tables of queries people keep: an outside image's vector, and saved searches that watch.

An outside image (dropped, pasted or picked to search with) is never added to the host's
assets: only its vector and a small preview are kept, so the results page can switch order
and the search can be saved. Unsaved ones are purged by the sweep after
``QUERY_IMAGE_HOURS``. Asset ids are kept as text (any host key type).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField

from similarity.models.embeddings import SCOPE_MAX_LENGTH


class QueryImage(models.Model):
    """The embedding of an image from outside the project, owned by the user who sent it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("file name"), max_length=255)
    model_key = models.CharField(_("model"), max_length=200)
    #: Null while a worker embeds it (QUERY_EMBEDDING "worker"): the web process polls it.
    vector = HalfVectorField(null=True, blank=True)
    #: Why the worker could not embed it (the web process reports it and deletes the row).
    error = models.TextField(_("error"), blank=True, default="")
    #: A small JPEG preview (longest side <= 256 px), not the original file.
    preview = models.BinaryField(blank=True, default=b"")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    #: Only this part was embedded: [x, y, width, height] in fractions of the image.
    region = ArrayField(models.FloatField(), size=4, null=True, blank=True)
    #: The project's own image the region was drawn on (its host key), or "" for a file.
    source_asset_id = models.CharField(max_length=SCOPE_MAX_LENGTH, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("query image")
        verbose_name_plural = _("query images")

    def __str__(self) -> str:
        return self.name


class TextQuery(models.Model):
    """A description embedded by the text model: one row per model and text, so a query
    typed again (another page, the other order, a saved search) is not embedded again.

    Rows are not owned by anyone (the text is the query, and it reveals nothing about a
    project); the sweep deletes those older than ``QUERY_IMAGE_HOURS``.
    """

    model_key = models.CharField(_("model"), max_length=200)
    text = models.TextField(_("text"))
    #: Null while a worker embeds it (QUERY_EMBEDDING "worker"): the web process polls it.
    vector = HalfVectorField(null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("text query")
        verbose_name_plural = _("text queries")
        constraints = [
            models.UniqueConstraint(fields=["model_key", "text"], name="similarity_text_query_once"),
        ]

    def __str__(self) -> str:
        return self.text


class SavedSearch(models.Model):
    """A named query of one project, re-run against each batch of newly embedded images."""

    class Order(models.TextChoices):
        MOST = "most", _("Most similar")
        LEAST = "least", _("Least similar")

    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="similarity_saved_searches"
    )
    name = models.CharField(_("name"), max_length=200)
    #: Host asset keys, as text: examples and counter-examples.
    positive_ids = ArrayField(models.CharField(max_length=SCOPE_MAX_LENGTH), default=list,
                              blank=True)
    negative_ids = ArrayField(models.CharField(max_length=SCOPE_MAX_LENGTH), default=list,
                              blank=True)
    query_image = models.ForeignKey(
        QueryImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: A description searched with the text model ("" for image searches).
    text = models.CharField(_("description"), max_length=1000, blank=True, default="")
    #: The unit query vector when saved, and the model that made it.
    vector = HalfVectorField(null=True, blank=True)
    model_key = models.CharField(_("model"), max_length=200, blank=True)
    order = models.CharField(max_length=5, choices=Order.choices, default=Order.MOST)
    threshold = models.FloatField(_("similarity at least"), null=True, blank=True)
    muted = models.BooleanField(_("muted"), default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("saved search")
        verbose_name_plural = _("saved searches")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "project_id", "name"],
                                    name="similarity_saved_search_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SavedSearchMatch(models.Model):
    """A newly embedded image that matched a saved search, grouped by the batch it came in."""

    saved_search = models.ForeignKey(SavedSearch, on_delete=models.CASCADE,
                                     related_name="matches")
    asset_id = models.CharField(max_length=SCOPE_MAX_LENGTH)
    similarity = models.FloatField()
    #: One id per batch of new images checked, shared by that batch's matches.
    batch = models.UUIDField(db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("saved search match")
        verbose_name_plural = _("saved search matches")
        ordering = ["-similarity", "id"]
        constraints = [
            models.UniqueConstraint(fields=["saved_search", "asset_id"],
                                    name="similarity_saved_match_once"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} ~ {self.saved_search_id} ({self.similarity:.3f})"
