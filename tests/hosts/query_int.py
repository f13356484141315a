"""Search with an outside image on a host with 4-byte keys (pictures -> folder -> library),
the default staff-only policy, pages under /tools/similar/ and the API under /api/v2/."""

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.hosts import scenario
from tests.hosts.conftest import varied_png
from tests.hosts.profiles import PictureHost
from tests.hosts.scenario import as_floats, stored_unit_vectors

# the shared scenario's fixtures, without its tests
add_asset, insider, make_project, outsider = (
    scenario.add_asset, scenario.insider, scenario.make_project, scenario.outsider)

OUTSIDE = varied_png(999, size=120)


@pytest.fixture
def host():
    return PictureHost()


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


def upload(name: str = "outside.png", data: bytes = OUTSIDE):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


def test_image_query_page_on_the_host(host, make_project, insider, outsider, client):
    from similarity.models import QueryImage

    library, pictures = make_project(5)
    scope = host.scope(library)
    client.force_login(insider)
    response = client.post(reverse("similarity:image-search", args=[scope]), {"image": upload()})
    assert response.status_code == 303
    assert response["Location"].startswith("/tools/similar/queries/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert len(page.context["matches"]) == 5
    assert {m.asset.pk for m in page.context["matches"]} == {p.pk for p in pictures}
    assert page.context["query_spec"]["image"] == str(QueryImage.objects.get().pk)
    assert "Add to dataset" not in page.content.decode()  # no hook on this host
    preview = client.get(reverse("similarity:image-preview", args=[QueryImage.objects.get().pk]))
    assert Image.open(io.BytesIO(preview.content)).format == "JPEG"
    client.force_login(outsider)
    assert client.get(response["Location"]).status_code == 404
    assert client.post(reverse("similarity:image-search", args=[scope]),
                       {"image": upload()}).status_code == 404


def test_image_query_api_on_the_host(host, make_project, insider, outsider, api_for):
    from similarity.models import QueryImage

    library, pictures = make_project(6)
    _other, theirs = make_project(1)
    scope = host.scope(library)
    url = f"/api/v2/projects/{scope}/similar/"
    response = api_for(insider).post(url, {"image": upload(), "positive": [pictures[0].pk]},
                                     format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    ids, matrix = stored_unit_vectors(scope)
    image = as_floats(QueryImage.objects.get(pk=body["query"]["id"]).vector)
    query = (image / np.linalg.norm(image) + matrix[ids.index(pictures[0].pk)]) / 2
    query /= np.linalg.norm(query)
    cosines = {pk: float(c) for pk, c in zip(ids, matrix @ query, strict=True)}
    got = [item["asset"]["id"] for item in body["results"]]
    assert sorted(got) == sorted(p.pk for p in pictures[1:])  # 4-byte keys stay integers
    sims = [item["similarity"] for item in body["results"]]
    assert sims == sorted(sims, reverse=True)
    for pk, sim in zip(got, sims, strict=True):
        assert abs(cosines[pk] - sim) < 2e-3
    assert api_for(insider).post(url, {"image": upload(), "positive": [theirs[0].pk]},
                                 format="multipart").status_code == 404
    refused = api_for(insider).post(url, {"image": upload("x.svg", b"<svg></svg>")},
                                    format="multipart")
    assert refused.status_code == 400 and refused.json()["detail"].startswith("x.svg: SVG")
    assert api_for(outsider).post(url, {"image": upload()}, format="multipart").status_code == 404
