"""Small builders for users, projects and image files (all generated, nothing downloaded)."""

from __future__ import annotations

import io
import itertools
import random

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from datasets.models import Dataset, Project, ProjectMembership
from datasets.uploads import create_asset

_counter = itertools.count(1)


def user(username: str | None = None, **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password="pw-123456", **extra)


def project(name: str = "Project", members: dict | None = None) -> Project:
    proj = Project.objects.create(name=f"{name} {next(_counter)}")
    for member, role in (members or {}).items():
        ProjectMembership.objects.create(project=proj, user=member, role=role)
    return proj


def dataset(proj: Project, name: str | None = None) -> Dataset:
    return Dataset.objects.create(project=proj, name=name or f"ds{next(_counter)}")


def image_bytes(fmt: str = "PNG", size=(64, 48), mode: str = "RGB", seed: int = 0, **save) -> bytes:
    rng = np.random.default_rng(seed)
    if mode in ("RGB", "RGBA", "CMYK"):
        bands = len(mode)
        array = rng.integers(0, 256, (size[1], size[0], bands), dtype=np.uint8)
        image = Image.fromarray(array, "RGBA" if mode == "RGBA" else "RGB")
        if mode == "CMYK":
            image = image.convert("CMYK")
    else:
        image = Image.new(mode, size)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def pattern_image(kind: int, seed: int = 0, size: int = 96) -> bytes:
    """Images in visual families, so that similar ones really look alike."""
    rng = random.Random(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == 0:
        base = ((xx // (8 + rng.randint(0, 3))) % 2) * 255
    elif kind == 1:
        base = (((xx - size / 2) ** 2 + (yy - size / 2) ** 2) ** 0.5 // 6 % 2) * 255
    else:
        base = (xx + yy) * 255 / (2 * size)
    noise = np.random.default_rng(seed).normal(0, 8, (size, size))
    grey = np.clip(base + noise, 0, 255).astype(np.uint8)
    rgb = np.stack([grey, np.roll(grey, kind * 7, axis=1), 255 - grey], axis=-1)
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, "PNG")
    return out.getvalue()


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def asset(ds: Dataset, name: str = "img.png", data: bytes | None = None, **kwargs):
    return create_asset(ds, upload(name, data if data is not None else image_bytes()), **kwargs)


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 64
