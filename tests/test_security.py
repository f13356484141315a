"""Hostile input and access: deny by default, CSRF, never-executable uploads, image hazards,
bounded resources, production settings."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from PIL import Image
from rest_framework.test import APIClient

from datasets.models import Asset
from datasets.uploads import UploadRejected
from similarity import tasks
from similarity.models import Embedding
from tests import factories
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

# --- deny by default: walk the whole URL conf --------------------------------------------

PUBLIC = (
    re.compile(r"^/accounts/(login|password_reset|reset)"),  # Django's auth pages
    re.compile(r"^/admin/(login|logout)/"),
    re.compile(r"^/healthz$"),
)
DENIED = {302, 401, 403, 404, 405}


SAMPLE_UUID = "12345678-1234-5678-1234-567812345678"


def _sample(regex: str) -> str:
    """A concrete path for a URL regex: every group becomes a value it matches ("1", or a
    UUID for a UUID group), so the path reaches the view."""
    out, depth, i = [], 0, 0
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex):
            if depth == 0 and regex[i + 1] not in "AZ":  # \A, \Z are anchors
                out.append(regex[i + 1])
            i += 2
            continue
        if char == "(":
            if depth == 0:
                group = regex[i:regex.find(")", i) + 1]
                out.append(SAMPLE_UUID if "{8}" in group else "1")
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char not in "^$?":
            out.append(char)
        i += 1
    return "".join(out)


def all_paths(patterns=None, prefix="") -> list[str]:
    paths = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        regex = pattern.pattern.regex.pattern
        if isinstance(pattern, URLResolver):
            paths += all_paths(pattern.url_patterns, prefix + _sample(regex))
        elif isinstance(pattern, URLPattern):
            path = "/" + prefix + _sample(regex)
            if "format" in regex:  # DRF's .json suffix variants: their plain route
                path = path.replace(".1", "")
                if regex.count("(?P<") == 1 and path.endswith("/1"):  # the root's own
                    path = path[:-1]
            paths.append(path.replace("//", "/"))
    return sorted(set(paths))


def test_url_conf_walk_finds_every_route():
    paths = all_paths()
    for expected in ("/api/assets/1/similar/", "/api/notifications/", "/datasets/1/upload/",
                     "/similarity/assets/1/similar/", "/assets/1/thumbnail/", "/admin/"):
        assert expected in paths
    assert len(paths) > 60


def test_anonymous_requests_are_denied_everywhere(dataset_a, settings):
    # even with the host's DRF default at AllowAny
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    factories.asset(dataset_a, "a.png")  # so id 1 exists where it matters
    client = Client()
    checked = 0
    for path in all_paths():
        if any(rule.match(path) for rule in PUBLIC):
            continue
        resolve(path)  # a path that reaches no view would be "denied" by a plain 404
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code in DENIED, (method, path, response.status_code)
            if response.status_code == 302:
                assert "login" in response["Location"], (path, response["Location"])
            checked += 1
    assert checked > 100


def test_unknown_filter_and_ordering_params_reach_nothing(api, dataset_a, dataset_b):
    factories.asset(dataset_a, "mine.png")
    factories.asset(dataset_b, "theirs.png")
    for query in ("ordering=dataset__project__memberships__user__password",
                  f"dataset__project={dataset_b.project_id}",
                  "uploaded_by__password__startswith=md5",
                  "metadata=__class__:x"):
        names = [a["original_filename"] for a in api.get(f"/api/assets/?{query}").json()["results"]]
        assert "theirs.png" not in names, query


# --- CSRF -----------------------------------------------------------------------------------


def test_unsafe_session_requests_need_csrf(alice, dataset_a):
    asset = factories.asset(dataset_a, "a.png")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for url in (reverse("datasets:dataset-upload", args=[dataset_a.pk]),
                reverse("datasets:asset-delete", args=[asset.pk]),
                reverse("datasets:dataset-rename", args=[dataset_a.pk]),
                reverse("similarity:reindex", args=[dataset_a.project_id]),
                reverse("similarity:notifications-read"),
                "/api/assets/", f"/api/projects/{dataset_a.project_id}/similarity/reindex/"):
        assert client.post(url).status_code == 403, url
    assert Asset.objects.filter(pk=asset.pk).exists()
    # the very same requests with the page's CSRF token pass the check (so the 403s
    # above were the CSRF check, not something else refusing them)
    client.get(reverse("datasets:dataset", args=[dataset_a.pk]))
    token = client.cookies["csrftoken"].value
    for url in (reverse("datasets:dataset-rename", args=[dataset_a.pk]),
                reverse("similarity:reindex", args=[dataset_a.project_id]),
                reverse("similarity:notifications-read"),
                f"/api/projects/{dataset_a.project_id}/similarity/reindex/",
                reverse("datasets:asset-delete", args=[asset.pk])):
        status = client.post(url, HTTP_X_CSRFTOKEN=token).status_code
        assert status != 403 and status < 500, (url, status)
    assert not Asset.objects.filter(pk=asset.pk).exists()


def test_token_clients_need_no_csrf(alice, dataset_a):
    from rest_framework.authtoken.models import Token

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    response = client.post(f"/api/projects/{dataset_a.project_id}/similarity/reindex/")
    assert response.status_code == 202


# --- uploads are never executable ------------------------------------------------------------


def test_png_html_polyglot_is_stored_and_served_as_an_image(web, dataset_a):
    data = factories.image_bytes("PNG") + b"<html><script>alert(document.cookie)</script></html>"
    asset = factories.asset(dataset_a, "page.html", data)
    assert asset.file.name.endswith(".png") and asset.content_type == "image/png"
    response = web.get(reverse("datasets:asset-file", args=[asset.pk]))
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["../../x.png", "..\\..\\x.png", "a\x00b.png",
                                  "<img src=x onerror=alert(1)>.png", "CON", ".htaccess"])
def test_hostile_names_never_reach_storage_and_are_escaped(web, dataset_a, name, client):
    asset = factories.asset(dataset_a, name)
    assert re.fullmatch(rf"assets/{dataset_a.pk}/[0-9a-f]{{32}}\.png", asset.file.name)
    assert "\x00" not in asset.original_filename and "/" not in asset.original_filename
    pages = [reverse("datasets:dataset", args=[dataset_a.pk]),
             reverse("datasets:asset", args=[asset.pk])]
    for url in pages:
        assert "<img src=x onerror" not in web.get(url).content.decode()
    admin = factories.user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    html = client.get(reverse("admin:datasets_asset_changelist")).content.decode()
    assert "<img src=x onerror" not in html


def test_escaped_in_results_and_notifications(web, dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        asset = factories.asset(dataset_a, "<b onmouseover=alert(1)>.png")
    tasks.embed_project(dataset_a.project_id)
    html = web.get(reverse("similarity:results", args=[asset.pk])).content.decode()
    assert "<b onmouseover" not in html and "&lt;b onmouseover=alert(1)&gt;.png" in html
    from similarity.embedding.notifications import notify

    notify(dataset_a.project_id, "<script>alert(1)</script>")
    html = web.get(reverse("similarity:notifications")).content.decode()
    assert "<script>alert(1)</script>" not in html


# --- image hazards ----------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))


def test_huge_dimensions_are_refused_before_decoding(dataset_a):
    with pytest.raises(UploadRejected, match="too many pixels"):
        factories.asset(dataset_a, "huge.png", png_header_only(100_000, 100_000))


def test_heic_without_a_plugin_is_an_image_we_cannot_read_not_a_video(dataset_a):
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(UploadRejected, match="not an image in a supported format"):
        factories.asset(dataset_a, "phone.heic", heic)


#: What each EXIF orientation asks a viewer to do to the stored pixels (the EXIF spec).
ORIENTATIONS = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}
QUADRANTS = ((255, 0, 0), (0, 0, 255), (0, 160, 0), (255, 220, 0))  # TL, TR, BL, BR


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    """The colour at the centre of each quadrant: top left, top right, bottom left, right."""
    width, height = image.size
    return [image.getpixel((int(width * x), int(height * y)))[:3]
            for y in (0.25, 0.75) for x in (0.25, 0.75)]


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(int(p) - int(q)) < 40 for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(dataset_a, orientation):
    """Four coloured quadrants stored 80x40 tell all eight orientations apart: the
    thumbnail and the pixels the model sees are what a viewer shows."""
    from similarity.vectors.images import load_rgb

    image = Image.new("RGB", (80, 40))
    for (x, y), colour in zip(((0, 0), (40, 0), (0, 20), (40, 20)), QUADRANTS, strict=True):
        image.paste(colour, (x, y, x + 40, y + 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    operation = ORIENTATIONS[orientation]
    expected = quadrant_colours(image if operation is None else image.transpose(operation))
    asset = factories.asset(dataset_a, f"o{orientation}.png", out.getvalue())
    transposed = orientation >= 5
    assert (asset.width, asset.height) == ((40, 80) if transposed else (80, 40))
    with asset.thumbnail.open("rb") as handle:
        thumb = Image.open(handle).convert("RGB")
    assert thumb.size == ((40, 80) if transposed else (80, 40))
    seen = quadrant_colours(thumb)
    assert all(near(a, b) for a, b in zip(seen, expected, strict=True)), (seen, expected)
    model_input = load_rgb(io.BytesIO(out.getvalue()))
    assert model_input.size == thumb.size
    assert quadrant_colours(model_input) == expected


def test_palette_with_transparency_and_animated_webp(dataset_a):
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=0)
    factories.asset(dataset_a, "p.png", out.getvalue())
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    asset = factories.asset(dataset_a, "anim.webp", out.getvalue())
    with asset.thumbnail.open("rb") as handle:
        r, _g, b = Image.open(handle).convert("RGB").getpixel((8, 8))
    assert r > 200 and b < 60


def test_every_mode_embeds_to_a_finite_unit_vector(dataset_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for mode in ("1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "RGB"):
            image = Image.new(mode, (40, 30))
            out = io.BytesIO()
            image.save(out, "TIFF")
            factories.asset(dataset_a, f"{mode}.tif", out.getvalue())
    tasks.embed_project(dataset_a.project_id)
    rows = list(Embedding.objects.all())
    assert len(rows) == 10 and {r.status for r in rows} == {"done"}
    for row in rows:
        vector = np.asarray(row.vector, dtype=np.float32)
        assert np.all(np.isfinite(vector)) and abs(np.linalg.norm(vector) - 1) < 2e-3


# --- bounded resources --------------------------------------------------------------------------


def test_search_and_upload_are_throttled(api, dataset_a, settings):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    rates = {"similarity_search": "2/min", "uploads": "1/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        asset = factories.asset(dataset_a, "a.png")
        codes = [api.get(f"/api/assets/{asset.pk}/similar/").status_code for _ in range(3)]
        assert codes[-1] == 429
        upload = {"dataset": dataset_a.pk, "file": factories.upload("b.png", factories.image_bytes())}
        assert api.post("/api/assets/", upload, format="multipart").status_code == 201
        upload = {"dataset": dataset_a.pk, "file": factories.upload("c.png", factories.image_bytes())}
        assert api.post("/api/assets/", upload, format="multipart").status_code == 429
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
        cache.clear()


def test_the_configured_search_rate_is_the_one_enforced(api, dataset_a, settings):
    """120/min, as the settings say: the 121st search within the minute is refused, with
    Retry-After, and an image-query POST counts against the same rate."""
    from django.core.cache import cache

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["similarity_search"] == "120/min"
    cache.clear()
    try:
        asset = factories.asset(dataset_a, "a.png")
        url = f"/api/assets/{asset.pk}/similar/"
        codes = [api.get(url, {"limit": 1}).status_code for _ in range(119)]
        assert set(codes) <= {200, 400}, set(codes)  # 400: not embedded yet, still counted
        image = api.post(f"/api/projects/{dataset_a.project_id}/similar/",
                         {"image": factories.upload("q.png", factories.image_bytes())},
                         format="multipart")
        assert image.status_code != 429  # the 120th
        refused = api.get(url, {"limit": 1})
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        again = api.post(f"/api/projects/{dataset_a.project_id}/similar/",
                         {"image": factories.upload("q.png", factories.image_bytes())},
                         format="multipart")
        assert again.status_code == 429
    finally:
        cache.clear()


# --- deployment ---------------------------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings(settings):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assetsite.settings_production",
           "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-" + "y" * 20,
           "DJANGO_ALLOWED_HOSTS": "assets.example.com",
           "ASSETSITE_DB_NAME": settings.DATABASES["default"]["NAME"]}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="assetsite.settings_production",
               DJANGO_ALLOWED_HOSTS="assets.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Set DJANGO_SECRET_KEY" in result.stderr
