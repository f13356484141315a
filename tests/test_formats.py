"""AVIF and HEIC photos (what phones send) decode everywhere images are read; SVG never.

The files are made here: Pillow writes AVIF itself, pillow-heif writes HEIC (without
registering its opener in this process, so the code under test must do that itself).
Each is checked through the shared decoder (similarity.vectors.images), the worker's
preprocessing, and the demo's upload intake (datasets.uploads).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from datasets.models import Asset
from datasets.uploads import UploadRejected, create_asset
from similarity.vectors.images import load_rgb, open_image
from similarity.vectors.preprocess import load_and_preprocess
from tests import factories

SIZE = (64, 48)
LEFT, RIGHT = (220, 30, 30), (30, 30, 220)


def two_colour_image() -> Image.Image:
    """Red left half, blue right half: a lossy codec keeps the halves recognisable."""
    pixels = np.zeros((SIZE[1], SIZE[0], 3), dtype=np.uint8)
    pixels[:, : SIZE[0] // 2] = LEFT
    pixels[:, SIZE[0] // 2:] = RIGHT
    return Image.fromarray(pixels, "RGB")


def avif_bytes() -> bytes:
    out = io.BytesIO()
    two_colour_image().save(out, "AVIF", quality=90)
    return out.getvalue()


def heic_bytes() -> bytes:
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(two_colour_image()).save(out, quality=90)
    return out.getvalue()


FORMATS = {
    "avif": (avif_bytes, "image/avif"),
    "heic": (heic_bytes, "image/heic"),
}


@pytest.fixture(params=sorted(FORMATS))
def photo(request) -> tuple[str, bytes, str]:
    make, content_type = FORMATS[request.param]
    data = make()
    assert data[4:8] == b"ftyp"  # a real ISO-BMFF still image, as a phone writes it
    return request.param, data, content_type


def test_the_test_files_are_what_they_claim(photo):
    ext, data, _ = photo
    brand = data[8:12]
    assert brand == (b"avif" if ext == "avif" else b"heic")


def test_shared_decoder_reads_them_to_rgb(photo):
    _, data, _ = photo
    assert open_image(io.BytesIO(data)).size == SIZE
    image = load_rgb(io.BytesIO(data))
    assert (image.mode, image.size) == ("RGB", SIZE)
    pixels = np.asarray(image, dtype=np.float64)
    left = pixels[4:-4, 4: SIZE[0] // 2 - 4].reshape(-1, 3).mean(axis=0)
    right = pixels[4:-4, SIZE[0] // 2 + 4: -4].reshape(-1, 3).mean(axis=0)
    assert np.abs(left - LEFT).max() < 40, left
    assert np.abs(right - RIGHT).max() < 40, right


def test_worker_preprocessing_reads_them(photo):
    _, data, _ = photo
    pixels = load_and_preprocess(io.BytesIO(data))
    assert pixels.shape[0] == 3 and np.isfinite(pixels).all()


@pytest.mark.django_db
def test_uploads_accept_them_by_content(dataset_a, photo):
    ext, data, content_type = photo
    asset = create_asset(dataset_a, factories.upload("from-phone.bin", data))
    assert (asset.kind, asset.content_type) == ("image", content_type)
    assert asset.file.name.endswith(f".{ext}")
    assert (asset.width, asset.height) == SIZE
    assert asset.thumbnail
    with asset.file.open("rb") as handle:
        assert load_rgb(handle).size == SIZE


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
       b'<rect width="64" height="48" fill="red"/><script>alert(1)</script></svg>')


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["drawing.svg", "drawing.png"])
def test_svg_is_refused_with_a_clear_reason(dataset_a, settings, name):
    with pytest.raises(UploadRejected) as refused:
        create_asset(dataset_a, factories.upload(name, SVG, "image/svg+xml"))
    reason = refused.value.reason
    assert refused.value.filename == name
    # The reason says what would be accepted, phone formats included.
    for accepted in ("JPEG", "PNG", "AVIF", "HEIC"):
        assert accepted in reason, reason
    assert not Asset.objects.exists()
    assert not any(files for _, _, files in os.walk(settings.MEDIA_ROOT))
