"""Text search in a real Chromium (issue 22): type a description on the Datasets page, see
the images ranked by the text model, switch the order; axe-clean."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from similarity import tasks
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(autouse=True)
def text_on(settings, siglip_folder):
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(siglip_folder),
                           "QUERY_EMBEDDING": "web"}


def test_type_a_description_and_see_the_images_it_ranks(page, dataset_a):
    for i in range(6):
        factories.asset(dataset_a, f"part{i}.png", factories.pattern_image(i % 3, seed=i))
    tasks.embed_project(dataset_a.project_id)
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    box = page.get_by_role("searchbox", name="Describe what you are looking for")
    expect(box).to_be_visible()
    assert serious_violations(page) == []
    box.fill("cracked metal casing")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/text-search/\?q=cracked\+metal\+casing"))
    results = page.get_by_test_id("results").locator("[data-asset-id]")
    expect(results).to_have_count(6)
    expect(page.get_by_test_id("legend")).to_contain_text("text model")
    expect(page.get_by_test_id("back-to-dataset")).to_have_text(dataset_a.name)
    # the box on the results page holds the description, for a second try
    expect(page.get_by_role("searchbox", name="Describe what you are looking for")) \
        .to_have_value("cracked metal casing")
    most = results.evaluate_all("tiles => tiles.map(t => t.dataset.assetId)")
    screenshot(page, "text-search-results")
    assert serious_violations(page) == []
    page.get_by_role("link", name="Least similar", exact=True).click()
    expect(page).to_have_url(re.compile(r"order=least"))
    expect(results).to_have_count(6)
    least = results.evaluate_all("tiles => tiles.map(t => t.dataset.assetId)")
    assert least == most[::-1] or least[0] == most[-1]
