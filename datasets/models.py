"""Projects, their members, datasets and image/video assets."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("datasets:project", args=[self.pk])


class ProjectMembership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        EDITOR = "editor", "Editor"
        ADMIN = "admin", "Admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return self.role in (self.Role.EDITOR, self.Role.ADMIN)


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_dataset_name")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("datasets:dataset", args=[self.pk])


# The one extension each accepted content type is stored under (uploads.py decides the
# content type from the bytes).
STORED_EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    "image/bmp": "bmp", "image/tiff": "tiff", "image/avif": "avif", "image/heic": "heic",
    "video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov",
}


def asset_upload_to(instance: Asset, filename: str) -> str:
    """Server-generated storage names: the client's name never reaches the disk, and the
    extension is always the one of the format detected from the content (a PNG sent as
    ``page.html`` is stored as ``….png``), whoever saves the file (upload, API, admin)."""
    ext = STORED_EXTENSIONS.get(instance.content_type, "bin")
    return f"assets/{instance.dataset_id}/{uuid.uuid4().hex}.{ext}"


def thumbnail_upload_to(instance: Asset, filename: str) -> str:
    return f"thumbnails/{instance.dataset_id}/{uuid.uuid4().hex}.webp"


class Asset(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="assets")
    file = models.FileField(upload_to=asset_upload_to, max_length=300)
    original_filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=100)
    size_bytes = models.BigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=300, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Keyset pagination of a dataset's grid: WHERE dataset_id = ? AND id < ?.
            models.Index(fields=["dataset", "-id"], name="asset_grid"),
            # Filename search (icontains) stays an index scan with 100k assets.
            GinIndex(
                OpClass(Upper("original_filename"), name="gin_trgm_ops"),
                name="asset_filename_trgm",
            ),
            # Metadata query: containment (metadata @> {...}).
            GinIndex(fields=["metadata"], name="asset_metadata", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return self.original_filename

    def get_absolute_url(self) -> str:
        return reverse("datasets:asset", args=[self.pk])

    @property
    def is_image(self) -> bool:
        return self.kind == self.Kind.IMAGE

    @property
    def project_id(self) -> int:
        return self.dataset.project_id


class Tag(models.Model):
    """A label of a project's own, put on assets by hand or by the bulk "Add a tag"."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)
    assets = models.ManyToManyField(Asset, related_name="tags", blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_tag_name")
        ]

    def __str__(self) -> str:
        return self.name
