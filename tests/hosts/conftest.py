"""Fixtures for the host-site suites (run with their own settings by tests/test_hosts.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image
from rest_framework.test import APIClient

from tests.hosts.photos.models import Album, Photo


def png(kind: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    base = ((xx // 8) % 2) * 255 if kind == 0 else (xx + yy) * 255 / 192
    grey = np.clip(base + rng.normal(0, 8, (96, 96)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.stack([grey, 255 - grey, grey], axis=-1), "RGB").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", password="pw", is_staff=True)


@pytest.fixture
def stranger(db):
    return get_user_model().objects.create_user("stranger", password="pw")


@pytest.fixture
def add_photo(django_capture_on_commit_callbacks):
    def make(album: Album | None, caption: str, kind: int = 0, seed: int = 0) -> Photo:
        with django_capture_on_commit_callbacks(execute=True):
            photo = Photo(album=album, caption=caption)
            photo.image.save(f"{caption}.png", ContentFile(png(kind, seed)), save=True)
        return photo

    return make


@pytest.fixture
def api_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
