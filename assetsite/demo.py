"""Demo data generated on the spot (no downloads): a project with a few dozen images.

Images come in visual families (stripes, rings, checkers, gradients, blobs, each in a
few colourways) so that similarity search has something meaningful to find.
"""

from __future__ import annotations

import io
import math
import random
import secrets

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image, ImageDraw, ImageFilter

from datasets.models import Dataset, Project, ProjectMembership
from datasets.uploads import create_asset

PALETTES = {
    "red": ((220, 40, 40), (255, 210, 200)),
    "blue": ((30, 80, 200), (200, 220, 255)),
    "green": ((30, 150, 70), (210, 245, 210)),
}


def draw(family: str, palette: str, rng: random.Random, size: int = 320) -> Image.Image:
    fg, bg = PALETTES[palette]
    image = Image.new("RGB", (size, size), bg)
    pen = ImageDraw.Draw(image)
    if family == "stripes":
        width = rng.randint(12, 28)
        for x in range(-size, size * 2, width * 2):
            pen.polygon([(x, 0), (x + width, 0), (x + width - size, size), (x - size, size)], fill=fg)
    elif family == "rings":
        cx, cy = size // 2 + rng.randint(-30, 30), size // 2 + rng.randint(-30, 30)
        for r in range(size, 0, -rng.randint(18, 30)):
            pen.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fg, width=8)
    elif family == "checkers":
        cell = rng.randint(24, 48)
        for y in range(0, size, cell):
            for x in range(0, size, cell):
                if (x // cell + y // cell) % 2 == 0:
                    pen.rectangle((x, y, x + cell, y + cell), fill=fg)
    elif family == "gradient":
        angle = rng.uniform(0, math.pi)
        for y in range(0, size, 4):
            for x in range(0, size, 4):
                t = (math.cos(angle) * x + math.sin(angle) * y) / (size * 1.5)
                colour = tuple(int(b + (f - b) * t) for f, b in zip(fg, bg, strict=True))
                pen.rectangle((x, y, x + 4, y + 4), fill=colour)
    else:  # blobs
        for _ in range(rng.randint(5, 9)):
            x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(20, 60)
            pen.ellipse((x - r, y - r, x + r, y + r), fill=fg)
        image = image.filter(ImageFilter.GaussianBlur(3))
    return image


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def seed_split(project: Project, user, rng: random.Random) -> int:
    """A "train" and a "test" dataset where the test set leaks: two byte-identical copies
    and one re-encoded copy of train images, so a newcomer's Leakage tab has a finding.
    The rest of "test" is new pictures; "train" also serves the "Not yet covered" tab."""
    train = Dataset.objects.create(project=project, name="train")
    test = Dataset.objects.create(project=project, name="test")
    kept: list[tuple[str, Image.Image, bytes]] = []
    for family in ("stripes", "rings", "checkers", "gradient"):
        for palette in ("red", "blue"):
            image = draw(family, palette, rng)
            data = _jpeg(image)
            name = f"train_{family}_{palette}.jpg"
            create_asset(train, SimpleUploadedFile(name, data, content_type="image/jpeg"),
                         user=user, metadata={"family": family, "colour": palette})
            kept.append((name, image, data))
    copies = [(f"test_{kept[0][0][6:]}", kept[0][2]), (f"test_{kept[3][0][6:]}", kept[3][2]),
              (f"test_{kept[5][0][6:-4]}_q70.jpg", _jpeg(kept[5][1], quality=70))]
    for family, palette in (("blobs", "green"), ("stripes", "green"), ("rings", "green")):
        copies.append((f"test_{family}_{palette}.jpg", _jpeg(draw(family, palette, rng))))
    for name, data in copies:
        create_asset(test, SimpleUploadedFile(name, data, content_type="image/jpeg"), user=user)
    return len(kept) + len(copies)


def seed_demo(stdout=None) -> tuple[str, str] | None:
    """Create the demo user, project and images once; return (username, password)."""
    if Project.objects.exists():
        return None
    User = get_user_model()
    password = secrets.token_urlsafe(9)
    rng = random.Random(7)
    with transaction.atomic():
        user, _ = User.objects.get_or_create(username="demo", defaults={"is_staff": True})
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        project = Project.objects.create(name="Demo project", description="Generated images")
        ProjectMembership.objects.create(
            project=project, user=user, role=ProjectMembership.Role.ADMIN
        )
        dataset = Dataset.objects.create(project=project, name="patterns")
    families = ["stripes", "rings", "checkers", "gradient", "blobs"]
    count = 0
    for family in families:
        for palette in PALETTES:
            for variant in range(2 if family != "blobs" else 3):
                image = draw(family, palette, rng)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=90)
                name = f"{family}_{palette}_{variant + 1}.jpg"
                upload = SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")
                create_asset(
                    dataset,
                    upload,
                    user=user,
                    metadata={"family": family, "colour": palette, "camera": rng.choice(
                        ["front", "side"]), "weather": rng.choice(["rain", "sun"])},
                )
                count += 1
    count += seed_split(project, user, rng)
    if stdout:
        stdout.write(f"Seeded demo project with {count} generated images.")
    return user.username, password
