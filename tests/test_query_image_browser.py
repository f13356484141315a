"""Search with an outside image in a real Chromium: drop a file on the Datasets page, paste
one from the clipboard, see the refusal of a bad file, and add the image to a dataset."""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import expect

from datasets.models import Asset
from similarity import tasks
from tests import factories
from tests.browser_tools import log_in, serious_violations
from tests.test_formats import SVG

pytestmark = [pytest.mark.browser, pytest.mark.integration]

OUTSIDE = factories.pattern_image(0, seed=50, size=200)

# Builds a File in the page and hands it over the way a person's drop or paste does.
DROP = """([selector, b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type}));
  const zone = document.querySelector(selector);
  for (const kind of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: data}));
  }
}"""
PASTE = """([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type}));
  document.body.dispatchEvent(new ClipboardEvent("paste", {bubbles: true, cancelable: true,
                                                           clipboardData: data}));
}"""


@pytest.fixture(autouse=True)
def web_mode(settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}


@pytest.fixture
def embedded(dataset_a):
    made = [factories.asset(dataset_a, f"pattern_{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(6)]
    tasks.embed_project(dataset_a.project_id)
    return made


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scores(page) -> list[float]:
    return [float(s) for s in page.locator("[data-similarity]").evaluate_all(
        "els => els.map(e => e.dataset.similarity)")]


def test_drop_a_file_on_the_datasets_page_then_add_it(page, dataset_a, embedded):
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    # the page's one drop zone (issue 24) offers "Search with this image"
    expect(page.get_by_test_id("dropzone")).to_contain_text("to upload or to search with one")
    zone = page.get_by_test_id("image-query")
    # a bad file first: the reason, naming the file, in the live region; no navigation
    page.evaluate(DROP, ["[data-dropzone]", b64(SVG), "drawing.svg", "image/svg+xml"])
    page.get_by_role("button", name="Search with this image").click()
    status = zone.locator("[data-image-query-status]")
    expect(status).to_contain_text("drawing.svg: SVG is a vector or document format")
    expect(status).to_have_attribute("role", "status")
    assert "/datasets/" in page.url
    assert serious_violations(page) == []
    page.evaluate(DROP, ["[data-dropzone]", b64(OUTSIDE), "outside.png", "image/png"])
    page.get_by_role("button", name="Search with this image").click()
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/\?order=most"))
    expect(page).to_have_title(re.compile("Similar to outside.png"))
    tiles = page.get_by_test_id("results").locator(".tile")
    expect(tiles).to_have_count(7)  # the preview and the six images
    expect(page.get_by_test_id("query-preview")).to_be_visible()
    assert page.get_by_test_id("query-preview").evaluate("img => img.naturalWidth") == 200
    got = scores(page)
    assert len(got) == 6 and got == sorted(got, reverse=True)
    page.get_by_role("link", name="Least similar").first.click()
    expect(page).to_have_title(re.compile("Least similar to outside.png"))
    assert scores(page) == sorted(scores(page))
    # the browser kept the file: "Add to dataset" re-sends it, no file picker needed
    add = page.get_by_test_id("image-add")
    expect(add.locator("[data-image-add-file]")).to_be_hidden()
    assert serious_violations(page) == []
    assert Asset.objects.count() == 6
    add.get_by_role("button", name="Add to dataset").click()
    expect(add.locator("[data-image-add-status]")).to_contain_text("Added outside.png")
    assert Asset.objects.filter(dataset=dataset_a, original_filename="outside.png").count() == 1


def test_paste_an_image_from_the_clipboard(page, dataset_a, embedded):
    log_in(page)
    page.goto(f"/similarity/assets/{embedded[0].pk}/similar/")
    # typing in a field is left alone
    page.evaluate("""() => { const i = document.createElement('input'); i.id = 'typing';
                             document.body.append(i); i.focus(); }""")
    page.locator("#typing").evaluate(
        """(el, [b64, name]) => { const d = new DataTransfer();
             d.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name,
                                  {type: 'image/png'}));
             el.dispatchEvent(new ClipboardEvent('paste', {bubbles: true, clipboardData: d})); }""",
        [b64(OUTSIDE), "ignored.png"])
    page.wait_for_timeout(300)
    assert "/assets/" in page.url
    page.evaluate(PASTE, [b64(OUTSIDE), "image.png", "image/png"])
    expect(page).to_have_url(re.compile(r"/similarity/queries/[0-9a-f-]+/"))
    expect(page).to_have_title(re.compile("Similar to image.png"))
    expect(page.get_by_test_id("results").locator(".tile")).to_have_count(7)


def test_pick_a_file_with_the_keyboard(page, dataset_a, embedded, tmp_path):
    path = tmp_path / "picked.png"
    path.write_bytes(OUTSIDE)
    log_in(page)
    page.goto(f"/datasets/{dataset_a.pk}/")
    picker = page.get_by_label("search with an image file")
    picker.focus()
    expect(picker).to_be_focused()
    picker.set_input_files(str(path))
    expect(page).to_have_title(re.compile("Similar to picked.png"))
