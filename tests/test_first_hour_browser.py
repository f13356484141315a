"""What a new user sees in the first hour, in a real Chromium (issue 14).

Each test keeps screenshots in var/screenshots/ (CI artifacts)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from similarity import tasks
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from tests import factories
from tests.browser_tools import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LONG_NAMES = ["camera_front_2026-11-24_rain_0001.png", "camera_side_2026-11-24_sun_0002.png",
              "inspection-line-7-bolt-closeup.png"]
RED = "rgb(185, 28, 28)"


def inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"])


def on_top(locator) -> bool:
    """The element is what a click at its centre would hit (nothing covers it)."""
    return locator.evaluate("""el => { const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return el.contains(hit); }""")


def test_dataset_page_before_anything_is_embedded(page, dataset_a):
    """Whole filenames, an unstyled ▶ badge, Similarity Search disabled with its reason,
    and the notifications menu open beside the sidebar, on top, keyboard operable."""
    for i, name in enumerate(LONG_NAMES):
        factories.asset(dataset_a, name, factories.pattern_image(i, seed=i))
    factories.asset(dataset_a, "walkthrough.mp4", factories.MP4_HEAD)
    scope = str(dataset_a.project_id)
    Notification.objects.create(project_id=scope, level="info", message="Computing embeddings")
    Notification.objects.create(
        project_id=scope, level="error",
        message="Similarity search is unavailable: the image model could not be loaded.")
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        log_in(page) if width == 1366 else None
        page.goto(f"/datasets/{dataset_a.pk}/")
        names = page.locator(".tile__name")
        expect(names).to_have_count(4)
        truncated = names.evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)"
            ".map(e => e.textContent)")
        assert truncated == [], f"filenames cut at {width}px: {truncated}"
        screenshot(page, f"dataset-tiles-{width}")
    video_link = page.locator(".tile[data-kind=video] .tile__link")
    assert video_link.evaluate("el => getComputedStyle(el).textDecorationLine") == "none"

    # nothing is embedded (no worker here): search is disabled, and says why
    button = page.get_by_role("button", name=f"Actions for {LONG_NAMES[0]}")
    button.click()
    menu = page.locator(f"#{button.get_attribute('aria-controls')}")
    search = menu.get_by_role("menuitem", name=re.compile("Similarity Search"))
    expect(search).to_have_attribute("aria-disabled", "true")
    expect(search).to_contain_text("Available once the first images are embedded.")
    search.click(force=True)  # a disabled item does nothing
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset_a.pk}/$"))
    screenshot(page, "dataset-search-disabled")
    page.keyboard.press("Escape")

    # the notifications menu: beside the sidebar, fully visible, nothing over it
    page.set_viewport_size({"width": 1366, "height": 768})
    bell = page.locator(".notifications__button")
    assert page.locator(".sidebar").inner_text().count("Notifications") == 1
    bell.focus()
    page.keyboard.press("Enter")
    notifications = page.locator("#notifications-menu")
    expect(notifications).to_be_visible()
    assert inside_viewport(page, notifications) and on_top(notifications)
    first = notifications.get_by_role("menuitem").first
    expect(first).to_be_focused()
    error = notifications.locator(".level-error")
    expect(error).to_contain_text("Error")
    assert error.evaluate("el => getComputedStyle(el).borderLeftColor") == RED
    expect(notifications).to_contain_text("just now")
    screenshot(page, "notifications-menu-1366")
    page.keyboard.press("ArrowDown")
    expect(notifications.get_by_role("menuitem").nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # wraps to the last item
    expect(notifications.get_by_role("menuitem").last).to_be_focused()
    page.keyboard.press("Escape")
    expect(notifications).to_be_hidden()
    expect(bell).to_be_focused()

    # the notifications page: an error is red and says so, nothing looks like a success
    page.goto("/similarity/notifications/")
    row = page.locator(".notification-list li.level-error")
    expect(row).to_contain_text("Error")
    assert row.evaluate("el => getComputedStyle(el).borderLeftColor") == RED
    backgrounds = page.locator(".notification__message").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert set(backgrounds) == {"rgba(0, 0, 0, 0)"}, backgrounds  # no green success box
    screenshot(page, "notifications-page")


def test_a_model_failure_reads_as_one_error_sentence_with_details(page, dataset_a):
    asset = factories.asset(dataset_a, "query.png")
    scope = str(dataset_a.project_id)
    sentence = ("Could not load the image model '/models/dinov2-smal'. Set the SIMILARITY_MODEL "
                "environment variable to a folder holding config.json and model.safetensors.")
    readiness.refresh(scope, error=sentence + "\nOSError: Incorrect path_or_model_id: '/models/dinov2-smal'")
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    box = page.get_by_test_id("readiness")
    expect(box).to_have_attribute("data-state", "failed")
    problem = page.get_by_test_id("readiness-error")
    expect(problem).to_be_visible()
    expect(problem.locator("[data-error-summary]")).to_have_text(sentence)
    assert problem.evaluate("el => getComputedStyle(el).color") == "rgb(153, 27, 27)"  # red
    details = problem.locator("details")
    expect(details.locator("pre")).to_be_hidden()  # behind the disclosure
    details.locator("summary").click()
    expect(details.locator("pre")).to_contain_text("OSError: Incorrect path_or_model_id")
    screenshot(page, "model-failure-dataset")

    page.goto(f"/similarity/assets/{asset.pk}/similar/")
    alert = page.get_by_test_id("readiness-error")
    expect(alert).to_contain_text("Similarity search is unavailable.")
    expect(alert).to_contain_text("SIMILARITY_MODEL")
    expect(page.get_by_text("searchable in a moment")).to_have_count(0)
    screenshot(page, "model-failure-results")


def test_progress_then_results_with_a_way_back_and_a_legend(page, dataset_a):
    assets = [factories.asset(dataset_a, f"p{i}.png", factories.pattern_image(i % 2, seed=i))
              for i in range(4)]
    scope = str(dataset_a.project_id)
    tasks.embed_project(scope)
    Embedding.objects.filter(asset__in=assets[2:]).update(status="pending", vector=None)
    readiness.refresh(scope)  # computing: 2 of 4
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    bar = page.locator(".similarity-readiness__bar")
    expect(bar).to_be_visible()
    pixels = Image.open(io.BytesIO(bar.screenshot())).convert("RGB")
    middle = pixels.height // 2
    done, rest = pixels.getpixel((3, middle)), pixels.getpixel((pixels.width - 4, middle))
    assert done == (124, 58, 237) and rest == (229, 231, 235), (done, rest)  # app purple on grey
    screenshot(page, "progress-bar")

    tasks.embed_project(scope)
    page.goto(f"/similarity/assets/{assets[0].pk}/similar/")
    expect(page.get_by_test_id("legend")).to_contain_text("cosine similarity")
    screenshot(page, "results-1366")
    page.get_by_test_id("back-to-dataset").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset_a.pk}/$"))


def test_admin_fits_1366_and_api_docs_work_offline(page, dataset_a, alice):
    for i in range(3):
        factories.asset(dataset_a, LONG_NAMES[i], factories.pattern_image(i, seed=i))
    alice.is_staff = alice.is_superuser = True
    alice.save()
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page)
    page.goto("/admin/datasets/asset/")
    results = page.locator("#changelist .results")
    widths = results.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert widths[0] <= widths[1], f"the change list overflows: {widths}"
    screenshot(page, "admin-assets-1366")

    outside = []
    base = page.url.split("/admin/")[0]

    def no_internet(route):
        if route.request.url.startswith(base):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", no_internet)
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Asset site API")
    expect(page.locator(".opblock").first).to_be_visible()
    screenshot(page, "api-docs-offline")
    assert outside == [], f"the docs reached outside the site: {outside}"
