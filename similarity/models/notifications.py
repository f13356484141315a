"""In-app notifications of a scope, to everyone who may see it or to one user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from similarity.models.embeddings import SCOPE_MAX_LENGTH


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info", _("Info")
        SUCCESS = "success", _("Success")
        WARNING = "warning", _("Warning")
        ERROR = "error", _("Error")

    project_id = models.CharField(_("project id"), max_length=SCOPE_MAX_LENGTH, db_index=True)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="similarity_notifications",
        help_text=_("Empty: everyone who can see the project."),
    )
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField(_("message"))
    url = models.CharField(_("link"), max_length=500, blank=True)
    # Makes "exactly once" a database guarantee: a second insert with the same key fails.
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    #: Last change: a batch's notification is updated in place as the batch progresses,
    #: and the newest change comes first.
    updated = models.DateTimeField(auto_now=True, db_index=True)
    read_by = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="similarity_notifications_read"
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-updated", "-id"]

    def __str__(self) -> str:
        return self.message
