"""Images first (issue 24, item 1), in a real Chromium at 1366x768 and 1920x1080: what is
above the fold, measured from bounding boxes; the one drop zone that offers both intents;
the outside image's breadcrumb; and a screenshot of every page at both sizes in
var/screenshots/ (CI keeps them as artifacts)."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from datasets.models import Asset, ProjectMembership
from similarity import insight_tasks, tasks
from similarity.models import SavedSearch
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations
from tests.test_query_image_browser import DROP

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SIZES = ((1366, 768), (1920, 1080))
OUTSIDE = factories.pattern_image(1, seed=70, size=200)

#: Every tile's box and, where it has one, its score's box (page coordinates of the viewport).
TILE_BOXES = """sel => [...document.querySelectorAll(sel)].map(t => {
  const r = t.getBoundingClientRect(), s = t.querySelector('[data-similarity]');
  const q = s ? s.getBoundingClientRect() : null;
  return {top: r.top, bottom: r.bottom, query: t.classList.contains('tile--query'),
          score: q ? {top: q.top, bottom: q.bottom} : null}; })"""


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


@pytest.fixture
def library(dataset_a, django_capture_on_commit_callbacks):
    """30 embedded images (more than two rows at either width), analysed for duplicates."""
    with django_capture_on_commit_callbacks(execute=True):
        made = [factories.asset(dataset_a, f"img{i:02d}.png", factories.pattern_image(i % 3, seed=i))
                for i in range(30)]
    tasks.embed_project(str(dataset_a.project_id))
    insight_tasks.run_until_done(str(dataset_a.project_id))
    return made


def rows(page, selector: str) -> list[list[dict]]:
    """The tiles grouped in rows, top to bottom (a row: tiles sharing a top edge)."""
    found: dict[int, list[dict]] = {}
    for box in page.evaluate(TILE_BOXES, selector):
        found.setdefault(round(box["top"]), []).append(box)
    return [found[top] for top in sorted(found)]


def full_rows_in_view(page, selector: str) -> int:
    height = page.viewport_size["height"]
    return sum(1 for row in rows(page, selector)
               if all(t["top"] >= 0 and t["bottom"] <= height for t in row))


def assert_results_fold(page, what: str) -> None:
    """The query and the first full row of results, scores included, need no scrolling."""
    height = page.viewport_size["height"]
    first = rows(page, '[data-testid="results"] > li.tile')[0]
    query = [t for t in first if t["query"]]
    results = [t for t in first if not t["query"]]
    assert query and results, f"{what}: the first row holds {first}"
    for tile in first:
        assert tile["bottom"] <= height, f"{what}: a first-row tile ends at {tile['bottom']} > {height}"
    assert all(t["score"] and t["score"]["bottom"] <= height for t in results), what
    legend = page.get_by_test_id("legend").bounding_box()
    assert legend["height"] <= 30, f"{what}: the legend is {legend['height']} px tall (one line)"


def drop(page, selector: str, *files: tuple[str, bytes, str]) -> None:
    """Drop files on the zone (DROP builds one File; several go through one DataTransfer)."""
    if len(files) == 1:
        name, data, kind = files[0]
        page.evaluate(DROP, [selector, base64.b64encode(data).decode(), name, kind])
        return
    page.evaluate("""([selector, files]) => {
      const data = new DataTransfer();
      for (const [b64, name, type] of files) {
        data.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, {type}));
      }
      const zone = document.querySelector(selector);
      for (const kind of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: data}));
      }
    }""", [selector, [[base64.b64encode(d).decode(), n, k] for n, d, k in files]])


def test_the_dataset_page_shows_two_full_rows_with_one_drop_zone(page, dataset_a, library):
    log_in(page)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/datasets/{dataset_a.pk}/")
        expect(page.get_by_test_id("readiness")).to_contain_text("Similarity search ready")
        screenshot(page, f"fold-dataset-{width}")
        assert full_rows_in_view(page, '[data-testid="grid"] > li.tile') >= 2, width
        # one drop zone, the filters in one row, the toolbar one row with only "Select" shown
        assert page.locator("[data-dropzone], [data-image-query-zone]").count() == 1
        assert page.locator("form.filters").bounding_box()["height"] <= 45
        toolbar = page.get_by_test_id("select-toolbar")
        expect(toolbar.get_by_role("button", name="Select all")).to_be_visible()
        expect(toolbar.get_by_role("button", name="Find similar to selection")).to_be_hidden()
        assert toolbar.bounding_box()["height"] <= 50
    assert serious_violations(page) == []


@pytest.mark.parametrize("order", ["most", "least"])
def test_a_results_page_shows_the_query_and_a_full_row_of_scored_results(
        page, dataset_a, library, order):
    log_in(page)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/similarity/assets/{library[0].pk}/similar/?order={order}")
        assert_results_fold(page, f"{order} at {width}")
        assert page.locator("[data-image-query-zone]").count() == 1  # drop or paste searches
        expect(page.get_by_test_id("threshold")).to_contain_text(
            "Similarity ≤" if order == "least" else "Similarity ≥")
        screenshot(page, f"fold-results-{order}-{width}")
    # the whole sentence about the score is one click away
    legend = page.get_by_test_id("legend")
    legend.get_by_text("About the score").click()
    expect(legend).to_contain_text("cosine similarity of DINOv2 image features")
    assert serious_violations(page) == []


def test_an_outside_image_dropped_on_the_dataset_page_searches_and_leads_back(
        page, dataset_a, library):
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    drop(page, "[data-dropzone]", ("outside.png", OUTSIDE, "image/png"))
    choice = page.locator("[data-drop-choice]")
    expect(choice).to_be_visible()
    choice.get_by_role("button", name="Search with this image").click()
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/\?order=most"))
    assert Asset.objects.count() == 30  # searched with, not uploaded
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        assert_results_fold(page, f"outside image at {width}")
        screenshot(page, f"fold-outside-results-{width}")
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs).to_contain_text(f"Datasets / {dataset_a.name} / outside.png")
    expect(page.locator("#image-add-target")).to_have_value(str(dataset_a.pk))
    page.get_by_role("link", name="Least similar").first.click()
    assert_results_fold(page, "outside image, least similar")
    crumbs.get_by_test_id("back-to-dataset").click()
    expect(page).to_have_url(re.compile(rf"/datasets/{dataset_a.pk}/$"))


def test_a_drop_offers_upload_or_search_and_upload_is_the_default(page, dataset_a, library):
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    zone = page.get_by_test_id("dropzone")
    choice = zone.locator("[data-drop-choice]")
    drop(page, "[data-dropzone]", ("new.png", OUTSIDE, "image/png"))
    expect(choice).to_contain_text("new.png:")
    expect(choice.get_by_role("button", name="Upload to this dataset")).to_be_focused()
    expect(choice.get_by_role("button", name="Search with this image")).to_be_visible()
    screenshot(page, "drop-choice-1366")
    assert serious_violations(page) == []
    page.keyboard.press("Escape")  # nothing happens to a dropped file the user let go
    expect(choice).to_be_hidden()
    page.wait_for_timeout(300)
    assert Asset.objects.count() == 30
    # Enter takes the default: upload, with the grid and the count refreshed
    drop(page, "[data-dropzone]", ("new.png", OUTSIDE, "image/png"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("count")).to_contain_text("31 files")
    assert Asset.objects.filter(dataset=dataset_a, original_filename="new.png").count() == 1
    # several files: upload them all, or search with the first image among them
    drop(page, "[data-dropzone]", ("clip.mp4", factories.MP4_HEAD, "video/mp4"),
         ("second.png", OUTSIDE, "image/png"))
    expect(choice).to_contain_text("2 files:")
    expect(choice.get_by_role("button", name="Upload all 2 to this dataset")).to_be_visible()
    choice.get_by_role("button", name="Search with second.png").click()
    expect(page).to_have_title(re.compile("Similar to second.png"))
    assert Asset.objects.count() == 31
    # a video alone cannot be searched with: only the upload is offered
    page.goto(f"/datasets/{dataset_a.pk}/")
    drop(page, "[data-dropzone]", ("clip.mp4", factories.MP4_HEAD, "video/mp4"))
    expect(choice.get_by_role("button", name="Upload to this dataset")).to_be_visible()
    expect(choice.get_by_role("button", name="Search with this image")).to_be_hidden()


def test_a_viewer_gets_one_drop_zone_that_searches(page, dataset_a, library):
    viewer = factories.user("vera")
    ProjectMembership.objects.create(project=dataset_a.project, user=viewer, role="viewer")
    log_in(page, "vera")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/datasets/{dataset_a.pk}/")
    screenshot(page, "fold-dataset-viewer-1366")
    assert page.locator("[data-dropzone]").count() == 0  # a viewer cannot upload
    assert page.locator("[data-image-query-zone]").count() == 1
    assert full_rows_in_view(page, '[data-testid="grid"] > li.tile') >= 2
    drop(page, "[data-image-query-zone]", ("outside.png", OUTSIDE, "image/png"))
    expect(page).to_have_title(re.compile("Similar to outside.png"))


def test_a_screenshot_of_every_page_at_both_sizes(page, dataset_a, library, alice):
    """Not a layout check: the pictures a reviewer looks at (each page must render)."""
    project = str(dataset_a.project_id)
    first, second = library[0], library[1]
    saved = SavedSearch.objects.create(owner=alice, project_id=project, name="stripes",
                                       positive_ids=[str(first.pk)])
    pages = {
        "project": reverse("datasets:project", args=[dataset_a.project_id]),
        "dataset": reverse("datasets:dataset", args=[dataset_a.pk]),
        "asset": reverse("datasets:asset", args=[first.pk]),
        "results": reverse("similarity:results", args=[first.pk]),
        "selection": reverse("similarity:selection") + f"?id={first.pk}&id={second.pk}",
        "saved-searches": reverse("similarity:saved-searches"),
        "saved-search-matches": reverse("similarity:saved-search-matches", args=[saved.pk]),
        "notifications": reverse("similarity:notifications"),
        "duplicates": reverse("similarity:insight-duplicates", args=[project]),
        "marked": reverse("similarity:insight-duplicates-marked", args=[project]),
        "outliers": reverse("similarity:insight-outliers", args=[project]),
        "map": reverse("similarity:insight-map", args=[project]),
        "leakage": reverse("similarity:insight-leakage", args=[project]),
        "diverse": reverse("similarity:curate-diverse", args=[project]) + f"?dataset={dataset_a.pk}",
        "coverage": reverse("similarity:curate-coverage", args=[project]),
        "failed": reverse("similarity:failed", args=[project]),
        "api-docs": reverse("api-docs"),
        "admin": reverse("admin:index"),
    }
    alice.is_staff = alice.is_superuser = True
    alice.save()
    log_in(page)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for name, url in pages.items():
            response = page.goto(url)
            assert response.status == 200, f"{name}: {url} answered {response.status}"
            page.wait_for_load_state("networkidle")
            screenshot(page, f"page-{name}-{width}")
