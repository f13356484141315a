"""Chromium: the threshold slider trims the results, the largest-gap marker sits between the
two tiles it separates, and "Save this search" keeps the slider's threshold."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pgvector import HalfVector
from playwright.sync_api import expect

from similarity import tasks
from similarity.embedding import readiness
from similarity.models import Embedding, SavedSearch
from similarity.search import find_similar
from similarity.search.gaps import largest_gap
from tests import factories
from tests.browser_tools import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: What dragging the thumb does: the value changes, then input and change events fire.
SET_RANGE = """(el, value) => { el.value = value;
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true})); }"""


#: Similarities of the other images to the query: the largest drop is 0.80 -> 0.55.
SPREAD = [0.95, 0.9, 0.86, 0.8, 0.55, 0.5, 0.45, 0.3, 0.2]


def spread_scores(images) -> None:
    """Give the images vectors with known similarities to the first one (the tiny random
    test model scores every pattern image ~0.99, too close for a slider of 0.01 steps)."""
    dims = Embedding.objects.get(asset=images[0]).dims
    basis = np.eye(dims, dtype=np.float32)
    Embedding.objects.filter(asset=images[0]).update(vector=HalfVector(basis[0]))
    for i, (asset, s) in enumerate(zip(images[1:], SPREAD, strict=True), start=1):
        vector = s * basis[0] + np.sqrt(1 - s * s) * basis[i]
        Embedding.objects.filter(asset=asset).update(vector=HalfVector(vector.astype(np.float16)))
    readiness.refresh(str(images[0].dataset.project_id))  # a new version: caches reload


def test_slider_trims_results_marks_the_gap_and_saves_the_search(page, dataset_a, alice):
    images = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
              for i in range(10)]
    tasks.embed_project(dataset_a.project_id)
    spread_scores(images)
    query = images[0]
    matches = find_similar(query).matches
    scores = [m.similarity for m in matches]
    gap = largest_gap(scores)
    log_in(page)
    page.goto(f"/similarity/assets/{query.pk}/similar/")
    results = page.get_by_test_id("results")
    tiles = results.locator("li.tile:not(.tile--query)")
    expect(tiles).to_have_count(len(matches))

    # the marker sits between the two tiles of the largest drop
    marker = page.get_by_test_id("gap-marker-inline")
    expect(marker).to_contain_text(f"Largest drop: {gap.before:.2f} → {gap.after:.2f}")
    neighbours = marker.evaluate(
        "m => [m.previousElementSibling.dataset.assetId, m.nextElementSibling.dataset.assetId]")
    assert neighbours == [str(matches[gap.index].asset.pk), str(matches[gap.index + 1].asset.pk)]

    slider = page.get_by_label("Similarity ≥")
    count = page.locator("[data-threshold-count]")
    expect(count).to_have_text(f"{len(matches)} of {len(matches)} results shown")
    # one click keeps the results above the drop
    page.get_by_role("button", name="Keep the results above it").click()
    expect(count).to_have_text(f"{gap.index + 1} of {len(matches)} results shown")
    expect(marker).to_be_visible()
    expect(tiles.nth(gap.index + 1)).to_be_hidden()
    assert (gap.before, gap.after) == (pytest.approx(0.8, abs=1e-3), pytest.approx(0.55, abs=1e-3))
    cut = 0.7
    expected = [str(m.asset.pk) for m in matches if m.similarity >= cut - 1e-9]
    assert 0 < len(expected) < len(matches), scores
    slider.evaluate(SET_RANGE, f"{cut:.2f}")
    expect(page.locator("[data-threshold-value]")).to_have_text(f"{cut:.2f}")
    expect(count).to_have_text(f"{len(expected)} of {len(matches)} results shown")
    visible = results.locator("li.tile:not(.tile--query):visible")
    expect(visible).to_have_count(len(expected))
    assert visible.evaluate_all("els => els.map(e => e.dataset.assetId)") == expected
    expect(page).to_have_url(re.compile(rf"min_similarity={cut:.2f}"))
    screenshot(page, "threshold-trimmed")

    # the keyboard moves it too (a labelled range input)
    slider.focus()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("[data-threshold-value]")).to_have_text(f"{cut - 0.01:.2f}")
    page.keyboard.press("ArrowRight")

    # reloaded (or shared), the server trims the same way
    page.reload()
    expect(results.locator("li.tile:not(.tile--query)")).to_have_count(len(expected))
    expect(page.locator("[data-threshold-value]")).to_have_text(f"{cut:.2f}")

    # save the search: the threshold comes from the slider
    page.get_by_text("Save this search").click()
    page.get_by_label("Name").fill("cracked casing")
    expect(page.get_by_label(re.compile("Notify at similarity"))).to_have_value(f"{cut:.2f}")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("saved-searches")).to_contain_text("cracked casing")
    saved = SavedSearch.objects.get(owner=alice)
    assert saved.threshold == pytest.approx(cut)
    assert saved.positive_ids == [str(query.pk)]
    screenshot(page, "saved-searches")


def test_in_least_order_the_slider_trims_the_similar_end(page, dataset_a):
    """Issue 24, item 4: "Similarity ≤ x", and the drop's button keeps the least alike."""
    images = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
              for i in range(10)]
    tasks.embed_project(dataset_a.project_id)
    spread_scores(images)
    matches = find_similar(images[0], order="least").matches
    scores = [m.similarity for m in matches]
    assert scores == sorted(scores)
    gap = largest_gap(scores)
    log_in(page)
    page.goto(f"/similarity/assets/{images[0].pk}/similar/?order=least")
    results = page.get_by_test_id("results")
    tiles = results.locator("li.tile:not(.tile--query)")
    count = page.locator("[data-threshold-count]")
    slider = page.get_by_label("Similarity ≤")
    expect(count).to_have_text(f"{len(matches)} of {len(matches)} results shown")
    # it starts at its high end, where it trims nothing
    expect(page.locator("[data-threshold-value]")).to_have_text(f"{math.ceil(max(scores) * 100) / 100:.2f}")
    # the drop is 0.55 -> 0.80 here: keep the results below it, the least alike
    page.get_by_role("button", name="Keep the results below it").click()
    expect(count).to_have_text(f"{gap.index + 1} of {len(matches)} results shown")
    expect(tiles.first).to_be_visible()
    expect(tiles.nth(gap.index + 1)).to_be_hidden()
    cut = 0.5
    expected = [str(m.asset.pk) for m in matches if m.similarity <= cut + 1e-9]
    slider.evaluate(SET_RANGE, f"{cut:.2f}")
    visible = results.locator("li.tile:not(.tile--query):visible")
    expect(visible).to_have_count(len(expected))
    assert visible.evaluate_all("els => els.map(e => e.dataset.assetId)") == expected
    expect(page).to_have_url(re.compile(rf"max_similarity={cut:.2f}"))
    page.reload()  # the server trims the same way
    expect(tiles).to_have_count(len(expected))
    page.get_by_text("Save this search").click()
    expect(page.get_by_label(re.compile("Notify at similarity"))).to_have_value(f"{cut:.2f}")
    screenshot(page, "threshold-least")
