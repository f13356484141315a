"""A real Chromium driven by Playwright against the live site and a real worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def files(tmp_path):
    paths = []
    for i, kind in enumerate([0, 0, 1, 2, 1]):
        path = tmp_path / f"pattern_{i}.png"
        path.write_bytes(factories.pattern_image(kind, seed=i, size=120))
        paths.append(path)
    return paths


def log_in(page, username="alice"):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-123456")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def open_dataset(page, dataset):
    page.goto(f"/datasets/{dataset.pk}/")
    page.wait_for_load_state()


def test_upload_two_images_and_open_a_tile_menu(page, dataset_a, files):
    log_in(page)
    page.get_by_role("link", name=re.compile("Datasets")).click()
    expect(page).to_have_title(re.compile("Datasets"))
    page.get_by_role("link", name="cams").click()
    page.wait_for_load_state()
    page.set_input_files("#upload-files", [str(files[0]), str(files[1])])
    expect(page.locator(".upload__item.is-ok")).to_have_count(2)
    grid = page.get_by_test_id("grid")
    expect(grid.locator(".tile")).to_have_count(2)
    expect(grid).to_contain_text("pattern_0.png")
    button = page.get_by_role("button", name="Actions for pattern_1.png")
    button.click()
    menu = page.locator(f"#{button.get_attribute('aria-controls')}")
    expect(menu).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    for item in ("Open", "Download", "Similarity Search", "Delete"):
        expect(menu.get_by_role("menuitem", name=item)).to_be_visible()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()


def test_bad_upload_shows_the_file_and_reason(page, dataset_a, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("<html>not an image</html>")
    log_in(page)
    open_dataset(page, dataset_a)
    page.set_input_files("#upload-files", [str(bad)])
    item = page.locator(".upload__item.is-error")
    expect(item).to_contain_text("notes.jpg")
    expect(item).to_contain_text("not an image")


def test_icon_turns_purple_then_similarity_search_most_and_least(page, worker, dataset_a, files):
    log_in(page)
    open_dataset(page, dataset_a)
    icon = page.get_by_test_id("readiness")
    page.set_input_files("#upload-files", [str(f) for f in files])
    expect(page.locator(".upload__item.is-ok")).to_have_count(len(files))
    expect(icon).to_have_attribute("data-state", "ready", timeout=90_000)
    expect(icon).to_contain_text("Similarity search ready")
    colour = icon.locator("svg").evaluate("el => getComputedStyle(el).color")
    assert colour == "rgb(124, 58, 237)"  # purple

    button = page.get_by_role("button", name="Actions for pattern_0.png")
    button.click()
    page.locator(f"#{button.get_attribute('aria-controls')}").get_by_role(
        "menuitem", name="Similarity Search").click()
    expect(page).to_have_title(re.compile("Similar to pattern_0.png"))
    tiles = page.get_by_test_id("results").locator(".tile")
    expect(tiles).to_have_count(len(files))
    expect(tiles.first).to_contain_text("Query image")
    scores = [float(s) for s in page.locator("[data-similarity]").evaluate_all(
        "els => els.map(e => e.dataset.similarity)")]
    assert len(scores) == len(files) - 1 and scores == sorted(scores, reverse=True)
    # pattern_1 is the other image of the same family: it must come right after the query
    expect(tiles.nth(1)).to_contain_text("pattern_1.png")

    page.get_by_role("link", name="Least similar").first.click()
    expect(page).to_have_title(re.compile("Least similar to pattern_0.png"))
    least = [float(s) for s in page.locator("[data-similarity]").evaluate_all(
        "els => els.map(e => e.dataset.similarity)")]
    assert least == sorted(least)


def test_menu_is_keyboard_operable(page, dataset_a):
    factories.asset(dataset_a, "kb.png")
    log_in(page)
    open_dataset(page, dataset_a)
    button = page.get_by_role("button", name="Actions for kb.png")
    button.focus()
    page.keyboard.press("Enter")
    menu = page.locator(f"#{button.get_attribute('aria-controls')}")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Open")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Download")).to_be_focused()
    page.keyboard.press("Escape")
    expect(button).to_be_focused()
