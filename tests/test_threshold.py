"""Score threshold and the largest-gap marker (issue 12, item 6): the gap function against
NumPy, and ``?min_similarity=`` trimming the results and selection pages server-side."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.urls import reverse

from similarity import tasks
from similarity.search import Match, SearchError, find_similar, find_similar_to_selection
from similarity.search.gaps import largest_gap, parse_min_similarity, trim
from tests import factories


def test_largest_gap_on_a_known_ranking():
    gap = largest_gap([0.95, 0.93, 0.91, 0.83, 0.61, 0.60, 0.55])
    assert (gap.index, gap.before, gap.after) == (3, 0.83, 0.61)
    assert gap.size == pytest.approx(0.22)


def test_largest_gap_matches_numpy_on_random_rankings():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 150))
        scores = np.sort(rng.uniform(-1, 1, n))[::-1]
        if rng.random() < 0.5:
            scores = scores[::-1]  # least-similar order rises: the gap is still absolute
        window = scores[:100]
        expected = int(np.argmax(np.abs(np.diff(window))))
        gap = largest_gap(scores.tolist())
        assert gap.index == expected
        assert gap.before == window[expected] and gap.after == window[expected + 1]


def test_largest_gap_edges():
    assert largest_gap([]) is None
    assert largest_gap([0.5]) is None
    assert largest_gap([0.7, 0.7, 0.7]) is None  # no drop at all
    assert largest_gap([1.0, 0.5, 0.5, 0.0]).index == 0  # ties: the first
    # only the top 100 count: a bigger drop further down is ignored
    scores = [1.0 - 0.001 * i for i in range(100)] + [0.0]
    assert largest_gap(scores).index < 99


def test_trim_and_parse():
    matches = [Match(asset=i, similarity=s, distance=1 - s) for i, s in
               enumerate([0.9, 0.8, 0.5])]
    assert [m.asset for m in trim(matches, 0.8)] == [0, 1]
    assert trim(matches, None) == matches
    assert parse_min_similarity("0.75") == 0.75
    assert parse_min_similarity("") is None and parse_min_similarity(None) is None
    # one rule for pages and the API: a malformed threshold is refused, saying why
    for bad in ("abc", "2", "-1.5", "nan", "inf"):
        with pytest.raises(SearchError, match="min_similarity must be a number from -1 to 1"):
            parse_min_similarity(bad)


@pytest.fixture
def images(db, dataset_a):
    made = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(9)]
    tasks.embed_project(dataset_a.project_id)
    return made


def tile_ids(content: bytes) -> list[str]:
    return re.findall(r'<li class="tile" data-asset-id="([^"]+)"', content.decode())


@pytest.mark.django_db
def test_results_page_trims_server_side_and_marks_the_gap(web, images):
    query = images[0]
    full = find_similar(query)
    scores = [m.similarity for m in full.matches]
    cut = float(np.median(scores))
    expected = [str(m.asset.pk) for m in full.matches if m.similarity >= cut]
    assert 0 < len(expected) < len(full.matches)
    url = reverse("similarity:results", args=[query.pk])

    page = web.get(url, {"min_similarity": f"{cut:.6f}"})
    assert tile_ids(page.content) == expected
    body = page.content.decode()
    assert f"{len(expected)} of {len(full.matches)} results shown" in body
    assert 'type="range"' in body and 'aria-live="polite"' in body
    gap = largest_gap(scores)
    assert f"Largest drop: {gap.before:.2f} → {gap.after:.2f}" in body
    assert f'data-gap-after="{full.matches[gap.index].asset.pk}"' in body
    assert f"(after result {gap.index + 1})" in body
    # no threshold: every result; a malformed one: a 400 that says what is allowed
    assert len(tile_ids(web.get(url).content)) == len(full.matches)
    refused = web.get(url, {"min_similarity": "x"})
    assert refused.status_code == 400 and tile_ids(refused.content) == []
    assert "min_similarity must be a number from -1 to 1" in refused.content.decode()


@pytest.mark.django_db
def test_selection_page_trims_server_side(web, images):
    positives = images[:2]
    full = find_similar_to_selection(positives)
    cut = float(np.median([m.similarity for m in full.matches]))
    expected = [str(m.asset.pk) for m in full.matches if m.similarity >= cut]
    page = web.get(reverse("similarity:selection"),
                   {"ids": ",".join(str(a.pk) for a in positives), "min_similarity": str(cut)})
    assert page.status_code == 200
    assert tile_ids(page.content) == expected


def test_slider_starts_at_its_low_end_without_a_threshold_in_the_context(rf):
    """A results page that passes no ``threshold`` (templates see "") trims nothing."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    matches = [Match(asset=SimpleNamespace(pk=i), similarity=s, distance=1 - s)
               for i, s in enumerate([0.93, 0.91, 0.62, 0.6])]
    result = SimpleNamespace(matches=matches)
    html = render_to_string("similarity/includes/threshold.html",
                            {"result": result, "matches": matches}, request=rf.get("/x/"))
    assert 'min="0.60" max="0.93"' in html and 'value="0.60"' in html
    assert 'data-server-bound=""' in html and "4 of 4 results shown" in html
    assert "Similarity ≥" in html and 'name="min_similarity"' in html
    assert "Largest drop: 0.91 → 0.62" in html and 'data-gap-after="1"' in html
    html = render_to_string("similarity/includes/threshold.html",
                            {"result": result, "matches": matches[:2], "threshold": 0.9},
                            request=rf.get("/x/", {"min_similarity": "0.9", "order": "most"}))
    assert 'value="0.90"' in html and 'data-server-bound="0.90"' in html
    assert "2 of 4 results shown" in html and 'name="order" value="most"' in html


def test_in_least_order_the_slider_is_a_maximum_starting_at_its_high_end(rf):
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    matches = [Match(asset=SimpleNamespace(pk=i), similarity=s, distance=1 - s)
               for i, s in enumerate([0.2, 0.25, 0.7, 0.72])]
    result = SimpleNamespace(matches=matches)
    html = render_to_string("similarity/includes/threshold.html",
                            {"result": result, "matches": matches, "order": "least"},
                            request=rf.get("/x/", {"order": "least"}))
    assert "Similarity ≤" in html and 'name="max_similarity"' in html
    assert 'min="0.20" max="0.72"' in html and 'value="0.72"' in html  # trims nothing
    assert "Keep the results below it" in html and "Largest drop: 0.25 → 0.70" in html
    html = render_to_string("similarity/includes/threshold.html",
                            {"result": result, "matches": matches[:2], "order": "least",
                             "threshold": 0.3},
                            request=rf.get("/x/", {"max_similarity": "0.3", "order": "least"}))
    assert 'value="0.30"' in html and 'data-server-bound="0.30"' in html
    assert "2 of 4 results shown" in html
    assert 'type="hidden" name="max_similarity"' not in html  # the slider is the field


def test_trim_keeps_each_orders_own_top():
    from types import SimpleNamespace

    matches = [SimpleNamespace(similarity=s) for s in (0.1, 0.4, 0.6, 0.9)]
    assert [m.similarity for m in trim(matches, None, 0.5)] == [0.1, 0.4]
    assert [m.similarity for m in trim(matches, 0.4, 0.6)] == [0.4, 0.6]
    assert trim(matches, None, None) == matches
    from similarity.search.gaps import parse_max_similarity

    with pytest.raises(SearchError, match="max_similarity must be a number from -1 to 1"):
        parse_max_similarity("2")


@pytest.mark.django_db
def test_least_order_pages_and_api_trim_the_similar_end(web, api, images):
    query = images[0]
    full = find_similar(query, order="least")
    scores = [m.similarity for m in full.matches]
    cut = float(np.median(scores))
    expected = [str(m.asset.pk) for m in full.matches if m.similarity <= cut]
    assert 0 < len(expected) < len(full.matches)
    url = reverse("similarity:results", args=[query.pk])
    page = web.get(url, {"order": "least", "max_similarity": f"{cut:.6f}"})
    assert tile_ids(page.content) == expected  # the least alike stay, in their order
    assert "Similarity ≤" in page.content.decode()
    body = api.get(f"/api/assets/{query.pk}/similar/",
                   {"order": "least", "max_similarity": f"{cut:.6f}"}).json()
    assert [str(r["asset"]["id"]) for r in body["results"]] == expected
    assert body["max_similarity"] == pytest.approx(cut) and body["min_similarity"] is None
    posted = api.post(f"/api/projects/{query.dataset.project_id}/similar/",
                      {"positive": [query.pk], "order": "least", "max_similarity": cut},
                      format="json").json()
    assert all(r["similarity"] <= cut + 1e-9 for r in posted["results"])
    assert web.get(url, {"order": "least", "max_similarity": "x"}).status_code == 400


@pytest.mark.django_db
def test_a_least_order_saved_search_runs_at_its_maximum(alice, images):
    from similarity.host.links import saved_search_run_url
    from similarity.models import SavedSearch

    search = SavedSearch(project_id=str(images[0].dataset.project_id), owner=alice, name="odd",
                         positive_ids=[str(images[0].pk)], order="least", threshold=0.3)
    assert "max_similarity=0.30" in saved_search_run_url(search)
    assert "min_similarity" not in saved_search_run_url(search)
    search.order, search.threshold = "most", 0.8
    assert "min_similarity=0.80" in saved_search_run_url(search)
