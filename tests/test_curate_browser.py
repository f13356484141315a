"""Curation in a real Chromium: pick 20 diverse images from a dataset and copy them to a
"to label" dataset with the selection toolbar; the leakage report selects the test-side
copies; axe-core finds no serious violation on the three pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from datasets.models import Dataset
from similarity import tasks
from similarity.insight import stage
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations

pytestmark = [pytest.mark.browser]


@pytest.fixture
def incoming(dataset_a):
    """30 images of 3 kinds in "incoming", an empty "to label"; embedded."""
    for i in range(30):
        factories.asset(dataset_a, f"img{i:02d}.png", factories.pattern_image(i % 3, seed=i))
    target = Dataset.objects.create(project=dataset_a.project, name="to label")
    tasks.embed_project(dataset_a.project_id)
    return dataset_a, target


def test_pick_20_diverse_from_a_dataset_and_copy_them_to_another(page, incoming):
    source, target = incoming
    log_in(page)
    page.goto(f"/datasets/{source.pk}/")
    page.get_by_test_id("pick-diverse").click()
    expect(page).to_have_url(re.compile(rf"/diverse/\?dataset={source.pk}&count=20$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Diverse picks")
    tiles = page.get_by_test_id("results").locator("li.tile")
    expect(tiles).to_have_count(20)
    expect(tiles.first).to_contain_text("start: most typical")
    expect(page.get_by_test_id("diverse-count")).to_contain_text("20 picks among 30")
    assert serious_violations(page) == []
    screenshot(page, "curate-diverse")
    page.get_by_role("button", name="Select all").click()
    expect(page.get_by_test_id("select-count")).to_have_text("20 selected")
    page.get_by_test_id("actions-toggle").click()
    page.get_by_label("Copy to dataset").select_option(label="to label")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_text("Copied 20 files to “to label”.")).to_be_visible()
    assert target.assets.count() == 20
    names = set(target.assets.values_list("original_filename", flat=True))
    picked = {f"img{i:02d}.png" for i in range(30)}
    assert len(names) == 20 and names <= picked


def test_leakage_report_selects_the_test_side_copies_and_pages_pass_axe(page, incoming):
    source, target = incoming
    tasks.embed_project(source.project_id)
    log_in(page)
    # copy five images to the other dataset, as a person would make a leaky split
    page.goto(f"/datasets/{source.pk}/")
    for i in range(5):
        page.get_by_label(f"Select img{i:02d}.png", exact=True).click()
    page.get_by_test_id("actions-toggle").click()
    page.get_by_label("Copy to dataset").select_option(label="to label")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_text("Copied 5 files")).to_be_visible()
    tasks.embed_project(source.project_id)
    while not stage.analyse_project(str(source.project_id)).get("skipped"):
        pass
    page.goto(f"/similarity/projects/{source.project_id}/leakage/?a={source.pk}&b={target.pk}"
              "&threshold=0.999")
    expect(page.get_by_test_id("leakage-summary")).to_contain_text("5 byte-identical")
    expect(page.get_by_test_id("leakage-summary")).to_contain_text("5 images of “to label”")
    assert serious_violations(page) == []
    screenshot(page, "curate-leakage")
    page.get_by_role("button", name="Select the “to label” copies on this page").click()
    expect(page.get_by_test_id("select-count")).to_have_text("5 selected")
    page.goto(f"/similarity/projects/{source.project_id}/coverage/?candidates={target.pk}"
              f"&reference={source.pk}")
    expect(page.get_by_test_id("coverage-count")).to_contain_text("5 images ranked against 30")
    assert serious_violations(page) == []
    screenshot(page, "curate-coverage")
