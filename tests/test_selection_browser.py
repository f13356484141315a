"""Selection in a real Chromium (issue 12, items 2 and 3): checkboxes with shift-click
ranges on the Datasets grid, "Find similar to selection", "Not like these", and every bulk
action from a results page, the ZIP download and the delete confirmation included."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import expect

from datasets.models import Asset, Tag
from similarity import tasks
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations

pytestmark = [pytest.mark.browser]


@pytest.fixture
def images(dataset_a):
    made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(8)]
    tasks.embed_project(dataset_a.project_id)
    return made


def tick(page, name: str, **kwargs) -> None:
    page.get_by_label(f"Select {name}", exact=True).first.click(**kwargs)


def open_actions(page) -> None:
    """The bulk actions open from the toolbar's "Actions" (issue 24: one row)."""
    toggle = page.get_by_test_id("actions-toggle")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(page.locator("[data-actions-panel]")).to_be_visible()


def test_shift_click_a_range_on_the_grid_then_find_similar(page, dataset_a, images):
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    count = page.get_by_test_id("select-count")
    expect(count).to_have_text("0 selected")
    # the grid is newest first: img7 .. img0; a range from img6 to img4 is three tiles
    tick(page, "img6.png")
    tick(page, "img4.png", modifiers=["Shift"])
    expect(count).to_have_text("3 selected")
    for name in ("img6.png", "img5.png", "img4.png"):
        expect(page.get_by_label(f"Select {name}", exact=True)).to_be_checked()
    expect(page.get_by_label("Select img7.png", exact=True)).not_to_be_checked()
    screenshot(page, "selection-grid")
    page.get_by_role("button", name="Find similar to selection").click()
    expect(page).to_have_url(re.compile(
        rf"/similarity/similar/\?id={images[6].pk}&id={images[5].pk}&id={images[4].pk}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Most similar to the selection")
    expect(page.get_by_test_id("results").locator(".tile")).to_have_count(5)
    expect(page.get_by_test_id("queries").locator(".tile")).to_have_count(3)


def test_select_all_none_and_keyboard(page, dataset_a, images):
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    count = page.get_by_test_id("select-count")
    page.get_by_role("button", name="Select all").click()
    expect(count).to_have_text("8 selected")
    page.get_by_role("button", name="Select none").click()
    expect(count).to_have_text("0 selected")
    box = page.get_by_label("Select img3.png", exact=True)
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    expect(count).to_have_text("1 selected")
    expect(count).to_have_attribute("aria-live", "polite")


def test_not_like_these_marks_counter_examples_and_searches_with_them(page, dataset_a, images):
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    tick(page, "img1.png")
    tick(page, "img2.png")
    page.get_by_role("button", name="Not like these").click()
    count = page.get_by_test_id("select-count")
    expect(count).to_have_text("0 selected · 2 not like these")
    marked = page.locator(".tile--negative")
    expect(marked).to_have_count(2)
    expect(marked.first).to_contain_text("Not like this")
    tick(page, "img0.png")
    tick(page, "img3.png")
    expect(count).to_have_text("2 selected · 2 not like these")
    page.get_by_role("button", name="Find similar to selection").click()
    expect(page).to_have_url(re.compile(
        rf"id={images[3].pk}&id={images[0].pk}&not_id={images[2].pk}&not_id={images[1].pk}$"))
    expect(page.locator("main, body").first).to_contain_text("pushed away from 2 counter-examples")
    expect(page.get_by_test_id("results").locator(".tile")).to_have_count(4)
    # the counter-examples stay marked on the results page, for the next refinement
    expect(page.get_by_test_id("queries").locator(".tile--negative")).to_have_count(2)
    expect(page.get_by_test_id("select-count")).to_have_text("0 selected · 2 not like these")


def test_the_toolbar_shows_its_actions_only_with_something_selected(page, dataset_a, images):
    """Issue 24, item 2: with nothing selected, only the "Select" affordances; with one, the
    count, the searches and "Actions" in one sticky row; its panel closes on Escape."""
    for i in range(24):  # a page long enough to scroll
        factories.asset(dataset_a, f"more{i}.png", factories.pattern_image(i % 3, seed=50 + i))
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    toolbar = page.get_by_test_id("select-toolbar")
    find = page.get_by_role("button", name="Find similar to selection")
    expect(page.get_by_role("button", name="Select all")).to_be_visible()
    expect(find).to_be_hidden()
    expect(page.get_by_test_id("actions-toggle")).to_be_hidden()
    expect(toolbar).to_contain_text("Tick images to act on them")
    empty_height = toolbar.bounding_box()["height"]
    tick(page, "img3.png")
    expect(page.get_by_test_id("select-count")).to_have_text("1 selected")
    expect(find).to_be_visible()
    assert toolbar.bounding_box()["height"] <= max(empty_height, 60)  # still one row
    toggle = page.get_by_test_id("actions-toggle")
    toggle.click()
    panel = page.locator("[data-actions-panel]")
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(panel.get_by_role("button", name="Delete…")).to_be_visible()
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()
    # the tile menus stack above the sticky toolbar (and its panel), never under them
    tile = page.locator("li.tile").filter(has_text="img3.png")
    tile.locator("[data-menu-button]").click()
    menu = tile.locator("[role=menu]")
    expect(menu).to_be_visible()
    order = page.evaluate("""() => [document.querySelector('.tile [role=menu]:not([hidden])'),
        document.querySelector('[data-select-toolbar]'), document.querySelector('[data-actions-panel]')]
        .map(el => +getComputedStyle(el).zIndex)""")
    assert order[0] > order[1] and order[0] > order[2], order
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Select none").click()
    expect(find).to_be_hidden()


def results_page(page, asset) -> None:
    page.goto(f"/similarity/assets/{asset.pk}/similar/")
    expect(page.get_by_test_id("select-toolbar")).to_be_visible()


def test_every_bulk_action_from_a_results_page(page, dataset_a, images, tmp_path):
    review = factories.dataset(dataset_a.project, "review")
    log_in(page)
    results_page(page, images[0])
    grid = page.get_by_test_id("results")
    expect(grid.locator(".tile")).to_have_count(8)  # the query tile and 7 results

    # tag two images
    tick(page, "img1.png")
    tick(page, "img2.png")
    open_actions(page)
    page.get_by_label("Tag", exact=True).fill("blurry")
    page.get_by_role("button", name="Add a tag").click()
    expect(page.locator(".messages")).to_contain_text("Tagged 2 images")
    assert set(Tag.objects.get(name="blurry").assets.values_list("pk", flat=True)) == {
        images[1].pk, images[2].pk}

    # exports and the ZIP: downloads, the page stays
    page.get_by_role("button", name="Select all").click()
    open_actions(page)
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(csv_download.value.path()).read())))
    assert list(rows[0]) == ["id", "filename", "group", "score", "query"]
    assert len(rows) == 8 and all(row["query"] == f"positive={images[0].pk}" for row in rows)
    with page.expect_download() as json_download:
        page.get_by_role("button", name="Export JSON").click()
    body = json.loads(open(json_download.value.path()).read())
    assert body["count"] == 8 and body["query"]["positive"] == [str(images[0].pk)]
    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Download ZIP").click()
    assert zip_download.value.suggested_filename.endswith(".zip")
    archive = zipfile.ZipFile(zip_download.value.path())
    assert sorted(archive.namelist()) == sorted(f"img{i}.png" for i in range(8))
    assert archive.read("img3.png") == images[3].file.open("rb").read()

    # copy and move to another dataset of the project
    page.get_by_role("button", name="Select none").click()
    tick(page, "img3.png")
    open_actions(page)
    page.locator("#bulk-copy-dataset").select_option(label="review")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Copied 1 file to “review”")
    assert Asset.objects.filter(dataset=review, original_filename="img3.png").count() == 1
    tick(page, "img4.png")
    open_actions(page)
    page.locator("#bulk-move-dataset").select_option(label="review")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Moved 1 file to “review”")
    assert Asset.objects.get(pk=images[4].pk).dataset_id == review.pk

    # delete: the dialog names the count; cancel keeps everything, confirm deletes
    tick(page, "img5.png")
    tick(page, "img6.png")
    open_actions(page)
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete 2 images?")
    screenshot(page, "selection-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Asset.objects.filter(pk__in=[images[5].pk, images[6].pk]).count() == 2
    open_actions(page)
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Deleted 2 images")
    assert not Asset.objects.filter(pk__in=[images[5].pk, images[6].pk]).exists()
    expect(page.get_by_label("Select img5.png", exact=True)).to_have_count(0)
