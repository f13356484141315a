"""Look closer in a real Chromium (issue 25): draw a box with the mouse and the keyboard,
search with it, open "Show match" and see the overlay drawn over the tiles; axe-clean."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from similarity import tasks
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations
from tests.test_look_closer import photo

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The overlay's pixels, read back through a canvas: how many are not fully transparent.
OPAQUE_PIXELS = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { count++; } }
  return count;
}"""


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


@pytest.fixture
def library(dataset_a):
    made = [factories.asset(dataset_a, f"photo{i}.png", photo(seed=i)) for i in range(5)]
    tasks.embed_project(dataset_a.project_id)
    return made


def overlay_is_drawn(tile) -> None:
    overlay = tile.locator("[data-match-overlay]")
    expect(overlay).to_have_count(1)
    overlay.evaluate("img => img.decode()")
    box, under = overlay.bounding_box(), tile.locator(".tile__thumb").bounding_box()
    assert box == pytest.approx(under, abs=1)  # over the thumbnail, exactly
    assert overlay.evaluate(OPAQUE_PIXELS) > 1000


def test_draw_a_box_search_with_it_and_show_where_a_result_matches(page, library):
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/similarity/assets/{library[0].pk}/similar/")
    opener = page.get_by_test_id("region-open")
    expect(opener).to_be_visible()
    opener.click()
    dialog = page.get_by_test_id("region-dialog")
    expect(dialog).to_be_visible()
    box = page.get_by_test_id("region-box")
    expect(box).to_be_focused()  # the box starts centred, ready for the keyboard
    readout = dialog.locator("[data-region-readout]")
    expect(readout).to_contain_text("25% from the left, 25% from the top, 50% wide")
    assert serious_violations(page) == []
    # draw with the mouse: from a third of the way in to two thirds
    image = dialog.locator("[data-region-image]")
    image.evaluate("img => img.decode()")
    frame = image.bounding_box()
    page.mouse.move(frame["x"] + frame["width"] * 0.1, frame["y"] + frame["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.6, frame["y"] + frame["height"] * 0.7, steps=5)
    page.mouse.up()
    expect(readout).to_contain_text("10% from the left, 20% from the top, 50% wide, 50% high")
    # and nudge it with the keyboard: right twice, then one step narrower
    box.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowLeft")
    expect(readout).to_contain_text("14% from the left, 20% from the top, 48% wide, 50% high")
    screenshot(page, "look-closer-region-dialog")
    dialog.get_by_test_id("region-search").click()
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/\?order=most"))
    expect(page.locator(".tile--query .tile__name")).to_have_text("Region of photo0.png")
    expect(page.get_by_test_id("query-region")).to_be_visible()
    tiles = page.get_by_test_id("results").locator(".tile:not(.tile--query)")
    expect(tiles).to_have_count(4)  # the other images: the region's own is not a result

    first = tiles.first
    first.locator("[data-menu-button]").click()
    first.get_by_test_id("show-match").click()
    expect(page.locator(".tile--query [data-match-legend]")).to_contain_text("Where it matches")
    overlay_is_drawn(first)
    expect(first.locator("[data-match-legend]")).to_contain_text("Strongest match in the ")
    thumb_description = first.locator(".tile__thumb").get_attribute("aria-describedby")
    assert thumb_description and page.locator(f"#{thumb_description}").count() == 1
    overlay_is_drawn(page.locator(".tile--query"))  # and the reverse map on the query
    expect(page.locator(".tile--query [data-match-legend]")).to_contain_text("Where it matches “")
    assert serious_violations(page) == []
    screenshot(page, "look-closer-show-match")
    # a second click hides it again
    first.locator("[data-menu-button]").click()
    expect(first.get_by_test_id("show-match")).to_have_text("Hide match")
    first.get_by_test_id("show-match").click()
    expect(first.locator("[data-match-overlay]")).to_have_count(0)
    expect(page.locator(".tile--query [data-match-overlay]")).to_have_count(0)


def test_a_region_of_the_asset_page_by_keyboard_alone_in_least_order(page, library):
    log_in(page)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(library[1].get_absolute_url())
    opener = page.get_by_test_id("region-open")
    opener.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("region-box")).to_be_focused()
    page.keyboard.press("Shift+ArrowUp")
    expect(page.locator("[data-region-readout]")).to_contain_text("48% high (160\u00d7115 px)")
    page.keyboard.press("Tab")  # the box, then the order, then the search button
    expect(page.locator("#region-order")).to_be_focused()
    page.locator("#region-order").select_option("least")
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("region-search")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/\?order=least"))
    scores = [float(s) for s in page.locator("[data-similarity]").evaluate_all(
        "els => els.map(e => e.dataset.similarity)")]
    assert len(scores) == 4 and scores == sorted(scores)
    assert serious_violations(page) == []


def test_a_region_of_an_outside_image_reuses_the_file_this_browser_kept(page, library, dataset_a):
    from tests.test_query_image_browser import DROP, b64

    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    page.evaluate(DROP, ["[data-dropzone]", b64(photo(seed=40)), "outside.png", "image/png"])
    page.get_by_role("button", name="Search with this image").click()
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/\?order=most"))
    assert f"target={dataset_a.pk}" in page.url  # "Add it to" starts at this dataset
    page.get_by_test_id("region-open").click()
    dialog = page.get_by_test_id("region-dialog")
    expect(dialog.locator("[data-region-readout]")).to_contain_text("(160\u00d7120 px)")
    expect(dialog.locator("[data-region-file]")).to_be_hidden()  # the kept file is used
    dialog.get_by_test_id("region-search").click()
    expect(page.locator(".tile--query .tile__name")).to_have_text("Region of outside.png")
    expect(page.get_by_test_id("results").locator(".tile:not(.tile--query)")).to_have_count(5)
    first = page.get_by_test_id("results").locator(".tile:not(.tile--query)").first
    first.locator("[data-menu-button]").click()
    first.get_by_test_id("show-match").click()
    expect(page.locator(".tile--query [data-match-legend]")).to_contain_text("Where it matches")
    overlay_is_drawn(first)
    overlay_is_drawn(page.locator(".tile--query"))  # the reverse map, on the kept preview
    assert serious_violations(page) == []
