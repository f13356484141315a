"""The host's own models; similarity is configured onto one family per settings module."""

import uuid

from django.conf import settings
from django.db import models

# --- 4-byte AutoField keys: library <- folder <- picture --------------------------------


class Library(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Folder(models.Model):
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return f"{self.library} / {self.name}"


class Picture(models.Model):
    """No get_absolute_url: similarity links to the admin change page instead."""

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="pictures")
    title = models.CharField(max_length=200)
    picture = models.ImageField(upload_to="pictures/%Y/")

    def __str__(self) -> str:
        return self.title


# --- UUID keys: workspace <- scan ------------------------------------------------------


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                     related_name="workspaces")

    def __str__(self) -> str:
        return self.name


class Scan(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="scans")
    label = models.CharField(max_length=200)
    scan = models.ImageField(upload_to="scans/")
    # The host's own per-asset rule: restricted scans are for superusers only.
    restricted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        return f"/scans/{self.pk}/"


# --- CharField keys: board <- pin --------------------------------------------------------


class Board(models.Model):
    slug = models.CharField(max_length=60, primary_key=True)
    title = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="boards")

    def __str__(self) -> str:
        return self.title


class Pin(models.Model):
    """A slug-like string key and a plain FileField; no get_absolute_url."""

    code = models.CharField(max_length=80, primary_key=True)
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="pins")
    title = models.CharField(max_length=200)
    artwork = models.FileField(upload_to="pins/")

    def __str__(self) -> str:
        return self.title
