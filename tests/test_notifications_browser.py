"""Calm notifications in Chromium (issue 24, item 3): the dropdown redraws its items when
a new one arrives (a saved search's match), without a reload, and opens above the sticky
selection toolbar."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from similarity import tasks, watch
from tests import factories
from tests.browser_tools import log_in, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_the_dropdown_shows_a_saved_search_match_without_a_reload(page, dataset_a, alice):
    images = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
              for i in range(3)]
    tasks.embed_project(dataset_a.project_id)
    watch.save_search(alice, dataset_a.project_id, name="cracked casing",
                      positive=[images[0].pk], threshold=-1)
    page.add_init_script("window.SIMILARITY_NOTIFICATIONS_POLL_MS = 300;")
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    menu = page.locator("#notifications-menu")
    page.locator(".notifications__button").click()
    expect(menu).to_contain_text("3 images added · Similarity search is ready")
    expect(menu).not_to_contain_text("cracked casing")
    # a new upload, embedded by the worker's code: the saved search notifies its owner
    factories.asset(dataset_a, "new.png", factories.pattern_image(0, seed=40))
    tasks.embed_project(dataset_a.project_id)
    expect(menu.locator("[data-notification-item]").first).to_contain_text(
        "1 new image looks like “cracked casing”", timeout=10_000)
    expect(page.locator("[data-unread-count]")).to_have_text("3")
    assert menu.locator("[data-notification-item]").count() == 3
    assert serious_violations(page) == []


def test_the_open_dropdown_is_above_the_selection_toolbar(page, dataset_a):
    for i in range(12):
        factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
    tasks.embed_project(dataset_a.project_id)
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    toolbar = page.get_by_test_id("select-toolbar")
    expect(toolbar).to_be_visible()
    # just after an upload: its progress list pushes the toolbar down beside the menu
    files = [{"name": f"new{i}.png", "mimeType": "image/png",
              "buffer": factories.pattern_image(i % 3, seed=40 + i)} for i in range(8)]
    page.set_input_files("#upload-files", files)
    expect(page.locator(".upload__item.is-ok")).to_have_count(8)
    page.locator(".notifications__button").click()
    menu = page.locator("#notifications-menu")
    expect(menu).to_be_visible()
    # scroll the page until the (sticky) toolbar runs under the open menu
    lift = toolbar.bounding_box()["y"] - menu.bounding_box()["y"] - 20
    page.evaluate("dy => window.scrollBy(0, dy)", lift)
    menu_box, bar = menu.bounding_box(), toolbar.bounding_box()
    overlap = (max(menu_box["x"], bar["x"]), max(menu_box["y"], bar["y"]),
               min(menu_box["x"] + menu_box["width"], bar["x"] + bar["width"]),
               min(menu_box["y"] + menu_box["height"], bar["y"] + bar["height"]))
    assert overlap[0] < overlap[2] and overlap[1] < overlap[3], (menu_box, bar)  # they overlap
    width, height = overlap[2] - overlap[0], overlap[3] - overlap[1]
    points = [(overlap[0] + width * i / 4, overlap[1] + height * j / 4)
              for i in range(1, 4) for j in range(1, 4)]
    covered = page.evaluate(
        "points => points.map(([x, y]) => "
        "!!document.elementFromPoint(x, y).closest('#notifications-menu'))", points)
    assert all(covered), covered  # the menu, not the toolbar, where both are
