"""What the shared host scenario (tests/hosts/scenario.py) needs to know about each host.

A profile creates the host's projects and assets the way the host itself would (plain
ORM calls), grants a user access by the host's own rules, and says what similarity must
link to. Nothing here calls similarity: the scenario checks similarity against it.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.db import models
from django.urls import reverse


class HostProfile:
    """One host site: its asset and project models and how assets hang off projects."""

    asset_model: type[models.Model]
    project_model: type[models.Model]
    image_field: str
    fk: str  # the asset's own field that decides its project (assigned to move it)
    label_field: str
    has_absolute_url: bool = True
    staff_sees_all: bool = False  # the default policy: any staff user sees every project

    def new_project(self, name: str, insider: Any) -> models.Model:
        """A project that ``insider`` may see (by the host's policy)."""
        raise NotImplementedError

    def placement(self, project: models.Model) -> models.Model:
        """The value of ``asset.<fk>`` that puts an asset into ``project``."""
        return project

    def new_asset(self, project: models.Model, label: str) -> models.Model:
        """An unsaved asset in ``project`` (the image is attached by the caller)."""
        return self.asset_model(**{self.fk: self.placement(project), self.label_field: label})

    @staticmethod
    def scope(project: models.Model) -> str:
        """Similarity's scope id for a project: its primary key as a string."""
        return str(project.pk)

    def asset_link(self, asset: models.Model) -> str:
        """Where results must link an asset: its own URL, else its admin change page."""
        if self.has_absolute_url:
            return asset.get_absolute_url()
        meta = self.asset_model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[asset.pk])

    def changelist_url(self) -> str:
        meta = self.asset_model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")


class PhotosHost(HostProfile):
    """8-byte keys; albums owned by users; the asset has get_absolute_url."""

    image_field, fk, label_field = "image", "album", "caption"

    def __init__(self) -> None:
        from tests.hosts.photos.models import Album, Photo

        self.asset_model, self.project_model = Photo, Album

    def new_project(self, name: str, insider: Any) -> models.Model:
        return self.project_model.objects.create(title=name, owner=insider)


class PictureHost(HostProfile):
    """4-byte keys; the project is two hops away (folder__library); staff-only policy."""

    image_field, fk, label_field = "picture", "folder", "title"
    has_absolute_url = False
    staff_sees_all = True

    def __init__(self) -> None:
        from tests.hosts.archive.models import Library, Picture

        self.asset_model, self.project_model = Picture, Library

    def new_project(self, name: str, insider: Any) -> models.Model:
        if not insider.is_staff:  # the default policy trusts staff only
            insider.is_staff = True
            insider.save(update_fields=["is_staff"])
        library = self.project_model.objects.create(name=name)
        library.folders.create(name="inbox")
        return library

    def placement(self, project: models.Model) -> models.Model:
        return project.folders.order_by("pk").first()


class ScanHost(HostProfile):
    """UUID keys on assets and projects; workspace members see scans."""

    image_field, fk, label_field = "scan", "workspace", "label"

    def __init__(self) -> None:
        from tests.hosts.archive.models import Scan, Workspace

        self.asset_model, self.project_model = Scan, Workspace

    def new_project(self, name: str, insider: Any) -> models.Model:
        workspace = self.project_model.objects.create(name=name)
        workspace.members.add(insider)
        return workspace


class PinHost(HostProfile):
    """Slug-like string keys on pins and boards; a FileField; no get_absolute_url."""

    image_field, fk, label_field = "artwork", "board", "title"
    has_absolute_url = False
    _codes = itertools.count(1)

    def __init__(self) -> None:
        from tests.hosts.archive.models import Board, Pin

        self.asset_model, self.project_model = Pin, Board

    def new_project(self, name: str, insider: Any) -> models.Model:
        slug = f"{name.lower().replace(' ', '-')}-board_{next(self._codes)}"
        return self.project_model.objects.create(slug=slug, title=name, owner=insider)

    def new_asset(self, project: models.Model, label: str) -> models.Model:
        asset = super().new_asset(project, label)
        asset.code = f"Pin-{next(self._codes):04d}_{label.lower()}"
        return asset
