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
    """Two families of 96x96 images (stripes, gradients) with seeded noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    base = ((xx // 8) % 2) * 255 if kind == 0 else (xx + yy) * 255 / 192
    grey = np.clip(base + rng.normal(0, 8, (96, 96)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.stack([grey, 255 - grey, grey], axis=-1), "RGB").save(out, "PNG")
    return out.getvalue()


def varied_png(seed: int, size: int = 48) -> bytes:
    """A small image from one of four pattern families, tinted and noised by ``seed``.

    Distinct seeds give distinct embeddings with a wide spread of cosine similarities
    (about 0.5 to 0.99 with the tiny test model), so rankings are well defined.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    kind = seed % 4
    if kind == 0:
        base = ((xx // (3 + seed % 7)) % 2) * 255.0
    elif kind == 1:
        base = (xx * np.cos(seed) + yy * np.sin(seed)) * 3 + 128
    elif kind == 2:
        base = np.hypot(xx - size / 2, yy - size / 2) * (3 + seed % 5)
    else:
        base = rng.uniform(0, 255, (size, size))
    base = np.clip(base + rng.normal(0, 20, (size, size)), 0, 255)
    tint = rng.uniform(0.2, 1.0, 3)
    pixels = np.stack([base * tint[0], 255 - base * tint[1], base * tint[2]], axis=-1)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(out, "PNG")
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
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
