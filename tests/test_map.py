"""The project map: page, data and API isolated to the user's projects, 409 before the
first analysis, and in Chromium: it paints, zooms, lasso- and box-selects, and opens
"Find similar to selection"."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from django.urls import reverse

from datasets.models import Asset
from similarity import insight_tasks
from similarity.testing import clustered_unit_vectors
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations
from tests.test_insight_engine import add_vectors

DIMS = 32


def analysed(dataset, count: int, start: int = 0, seed: int = 0) -> list[int]:
    ids = add_vectors(dataset, clustered_unit_vectors(count, DIMS, clusters=4, seed=seed),
                      start=start)
    insight_tasks.run_until_done(str(dataset.project_id))
    return ids


@pytest.mark.django_db
def test_map_page_data_and_api_are_isolated(api, web, project_a, project_b, dataset_a, dataset_b):
    theirs = str(project_b.pk)
    add_vectors(dataset_a, clustered_unit_vectors(12, DIMS, clusters=2, seed=1))
    assert api.get(f"/api/projects/{project_a.pk}/map/").status_code == 409
    assert web.get(reverse("similarity:insight-map-data", args=[project_a.pk])).status_code == 409
    page = web.get(reverse("similarity:insight-map", args=[project_a.pk]))
    assert page.status_code == 200 and 'data-testid="insight-progress"' in page.content.decode()
    insight_tasks.run_until_done(str(project_a.pk))
    analysed(dataset_b, 10, start=100, seed=2)
    ours = api.get(f"/api/projects/{project_a.pk}/map/")
    assert ours.status_code == 200 and ours.data["count"] == 12
    # ids are text, so a 64-bit key survives JavaScript's numbers
    assert set(ours.data["ids"]) == {str(pk) for pk in Asset.objects.filter(dataset=dataset_a)
                                     .values_list("pk", flat=True)}
    data = web.get(reverse("similarity:insight-map-data", args=[project_a.pk])).json()
    assert data["ids"] == ours.data["ids"] and data["x"] == ours.data["x"]
    html = web.get(reverse("similarity:insight-map", args=[project_a.pk])).content.decode()
    assert 'data-testid="map-canvas"' in html and 'role="img"' in html
    for name in ("insight-map", "insight-map-data", "insight-map-thumbs"):
        assert web.get(reverse(f"similarity:{name}", args=[theirs])).status_code == 404
        assert web.get(reverse(f"similarity:{name}", args=["nope"])).status_code == 404
    assert api.get(f"/api/projects/{theirs}/map/").status_code == 404
    # thumbnails: only our visible assets, whatever ids are asked for
    their_asset = Asset.objects.filter(dataset=dataset_b).first().pk
    mine = ours.data["ids"][:3]
    url = reverse("similarity:insight-map-thumbs", args=[project_a.pk])
    thumbs = web.get(url, {"ids": ",".join(map(str, [*mine, their_asset, "x"]))}).json()
    assert {t["id"] for t in thumbs["thumbnails"]} == set(mine)


@pytest.mark.django_db
def test_duplicates_and_outliers_pages_link_the_map(web, project_a, dataset_a):
    analysed(dataset_a, 8)
    for name in ("insight-duplicates", "insight-outliers"):
        html = web.get(reverse(f"similarity:{name}", args=[project_a.pk])).content.decode()
        assert reverse("similarity:insight-map", args=[project_a.pk]) in html


def test_map_zooms_selects_and_opens_the_selection(page, project_a, dataset_a):
    second = factories.dataset(project_a, "second")
    analysed(dataset_a, 240, seed=5)
    analysed(second, 60, start=1000, seed=6)
    log_in(page)
    page.goto(reverse("similarity:insight-map", args=[project_a.pk]))
    page.wait_for_selector("[data-map][data-first-paint]")
    summary = page.locator("[data-map-summary]").inner_text()
    assert "Map of 300 images" in summary and "second" in summary
    legend = page.locator("[data-map-legend]").inner_text()
    assert "second (60)" in legend
    assert serious_violations(page) == []
    canvas = page.get_by_test_id("map-canvas")
    frames = int(page.locator("[data-map]").get_attribute("data-frames"))
    page.get_by_role("button", name="Zoom in").click()
    page.wait_for_function(f"+document.querySelector('[data-map]').dataset.frames > {frames}")
    page.get_by_role("button", name="Fit all").click()
    page.get_by_label("Colour by").select_option("score")
    assert "most unusual" in page.locator("[data-map-legend]").inner_text()

    # lasso around the whole canvas: every image, capped at MAX_RESULTS for the search
    page.get_by_role("button", name="Lasso select").click()
    box = canvas.bounding_box()
    corners = [(box["x"] + 2, box["y"] + 2), (box["x"] + box["width"] - 2, box["y"] + 2),
               (box["x"] + box["width"] - 2, box["y"] + box["height"] - 2),
               (box["x"] + 2, box["y"] + box["height"] - 2)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in [*corners[1:], corners[0]]:
        page.mouse.move(*corner, steps=5)
    page.mouse.up()
    assert page.locator("[data-selection-count]").inner_text() == "300 images selected"
    assert "first 100" in page.locator("[data-selection-note]").inner_text()

    # a box over the left half selects fewer
    page.get_by_role("button", name="Box select").click()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    screenshot(page, "map-box-selection")
    text = page.locator("[data-selection-count]").inner_text()
    count = int(text.split()[0].replace(",", ""))
    assert 0 < count < 300
    link = page.get_by_role("link", name="Find similar to selection")
    href = link.get_attribute("href")
    ids = parse_qs(urlparse(href).query)["id"]  # one id= per image
    assert len(ids) == min(count, 100)
    assert set(map(int, ids)) <= set(Asset.objects.filter(dataset__project=project_a)
                                     .values_list("pk", flat=True))
    link.click()
    page.wait_for_load_state()
    assert urlparse(page.url).path == reverse("similarity:selection")
    assert page.locator("h1").count() >= 1


@pytest.mark.django_db
def test_the_map_payload_is_narrowed_by_the_policy(api, settings, project_a, dataset_a):
    ids = analysed(dataset_a, 10)
    Asset.objects.filter(pk=ids[0]).update(original_filename="hidden.png")
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "ACCESS_POLICY": "tests.test_insight_views.HidesSomeAssets"}
    data = api.get(f"/api/projects/{project_a.pk}/map/").data
    assert data["count"] == 9 and ids[0] not in data["ids"]
    assert np.isclose(max(max(data["x"]), max(data["y"])), 1.0)


@pytest.mark.integration
def test_insight_and_map_on_a_host_with_uuid_keys():
    from tests.hosts.runner import run_host_suite

    output = run_host_suite("tests.hosts.uuid_settings", "insight_uuid.py")
    assert "4 passed" in output  # insight, the map and curation


@pytest.mark.integration
def test_insight_and_map_on_a_host_with_string_keys():
    from tests.hosts.runner import run_host_suite

    output = run_host_suite("tests.hosts.char_settings", "insight_char.py")
    assert "2 passed" in output  # insight, the map and curation
