"""Curation: diverse picks, coverage and leakage, each against a NumPy brute force over the
stored vectors, on planted data, and through the API with its permissions and bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rest_framework.test import APIClient

from datasets.models import Dataset
from similarity import curate
from similarity.insight import leakage as leaks
from similarity.insight import neighbours, stage
from similarity.models import Embedding
from similarity.testing import clustered_unit_vectors
from tests import factories
from tests.test_insight_engine import add_vectors

pytestmark = pytest.mark.django_db
DIMS = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def stored(asset_ids: list) -> tuple[list, np.ndarray]:
    """The assets' vectors as the database holds them (halfvec), unit, float64."""
    rows = dict(Embedding.objects.filter(asset_id__in=asset_ids).values_list("asset_id", "vector"))
    ids = sorted(rows, key=lambda a: Embedding.objects.get(asset_id=a).pk)
    vectors = np.array([np.asarray(rows[a], dtype=np.float64) for a in ids])
    return ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def brute_greedy(vectors: np.ndarray, count: int, reference: np.ndarray | None = None):
    """Farthest-point selection written the plain way, in float64."""
    if reference is not None and len(reference):
        nearest = 1 - (vectors @ reference.T).max(axis=1)
        picks, distances = [], []
    else:
        first = int(np.argmax(vectors @ vectors.mean(axis=0)))
        picks, distances = [first], [None]
        nearest = 1 - vectors @ vectors[first]
        nearest[first] = -np.inf
    while len(picks) < min(count, len(vectors)):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        distances.append(float(nearest[pick]))
        nearest = np.minimum(nearest, 1 - vectors @ vectors[pick])
        nearest[picks] = -np.inf
    return picks, distances


@pytest.fixture
def two_datasets(alice):
    project = factories.project("curate", {alice: "editor"})
    train = Dataset.objects.create(project=project, name="train")
    test = Dataset.objects.create(project=project, name="test")
    vectors = clustered_unit_vectors(300, DIMS, clusters=15, seed=3)
    train_ids = add_vectors(train, vectors[:200])
    test_ids = add_vectors(test, vectors[200:], start=1000)
    return project, train, test, train_ids, test_ids


def test_k_center_picks_equal_a_brute_force_greedy(two_datasets, alice):
    project, train, _test, train_ids, test_ids = two_datasets
    everything = train_ids + test_ids
    ids, vectors = stored(everything)
    found = curate.pick_diverse(str(project.pk), 25, user=alice)
    picks, distances = brute_greedy(vectors, 25)
    assert [p.asset_id for p in found.picks] == [ids[i] for i in picks]
    assert found.picks[0].distance is None and found.candidates == 300
    assert [p.distance for p in found.picks[1:]] == pytest.approx(distances[1:], abs=2e-4)
    assert all(a >= b - 1e-6 for a, b in itertools.pairwise(distances[1:]))  # non-increasing
    # deterministic: the same input gives the same picks
    again = curate.pick_diverse(str(project.pk), 25, user=alice)
    assert [p.row_id for p in again.picks] == [p.row_id for p in found.picks]

    # narrowed to one dataset, and to a selection (ids)
    ids, vectors = stored(train_ids)
    found = curate.pick_diverse(str(project.pk), 10, user=alice, group=str(train.pk))
    assert [p.asset_id for p in found.picks] == [ids[i] for i in brute_greedy(vectors, 10)[0]]
    chosen = train_ids[5:60]
    ids, vectors = stored(chosen)
    found = curate.pick_diverse(str(project.pk), 7, user=alice, ids=[str(a) for a in chosen])
    assert [p.asset_id for p in found.picks] == [ids[i] for i in brute_greedy(vectors, 7)[0]]
    # more than there are: all of them, each once
    found = curate.pick_diverse(str(project.pk), 1000, user=alice, ids=[str(a) for a in chosen])
    assert sorted(p.asset_id for p in found.picks) == sorted(chosen)


def test_diverse_keeps_away_from_the_reference_datasets(two_datasets, alice):
    project, train, test, train_ids, test_ids = two_datasets
    ids, vectors = stored(test_ids)
    _ref_ids, reference = stored(train_ids)
    found = curate.pick_diverse(str(project.pk), 12, user=alice,
                                exclude_similar_to=[str(train.pk)])
    picks, distances = brute_greedy(vectors, 12, reference)
    assert [p.asset_id for p in found.picks] == [ids[i] for i in picks]
    assert [p.distance for p in found.picks] == pytest.approx(distances, abs=2e-4)
    assert found.reference == 200 and found.candidates == 100
    # the same through coverage's "diverse among the uncovered"
    same = curate.diverse_uncovered(str(project.pk), str(test.pk), [str(train.pk)], 12, user=alice)
    assert [p.asset_id for p in same.picks] == [p.asset_id for p in found.picks]


def test_ten_tight_clusters_give_one_pick_per_cluster(alice):
    project = factories.project("clusters", {alice: "editor"})
    dataset = Dataset.objects.create(project=project, name="d")
    rng = np.random.default_rng(11)
    centres = unit(rng.normal(size=(10, DIMS)))
    vectors = unit(np.repeat(centres, 20, axis=0) + rng.normal(0, 0.03, (200, DIMS)))
    ids = add_vectors(dataset, vectors)
    cluster = {asset: i // 20 for i, asset in enumerate(ids)}
    found = curate.pick_diverse(str(project.pk), 10, user=alice, group=str(dataset.pk))
    assert sorted(cluster[p.asset_id] for p in found.picks) == list(range(10))


def test_coverage_ranking_equals_brute_force_nearest_neighbours(two_datasets, alice):
    project, train, test, train_ids, test_ids = two_datasets
    ids, vectors = stored(test_ids)
    ref_ids, reference = stored(train_ids)
    ranked = curate.rank_coverage(str(project.pk), str(test.pk), [str(train.pk)], user=alice)
    sims = vectors @ reference.T
    best = sims.max(axis=1)
    expected = [ids[i] for i in np.argsort(best, kind="stable")]
    items = ranked.items()
    assert [item.asset_id for item in items] == expected
    assert [item.similarity for item in items] == pytest.approx(np.sort(best), abs=2e-4)
    assert [item.nearest_asset_id for item in items] == [
        ref_ids[int(np.argmax(sims[ids.index(item.asset_id)]))] for item in items]
    assert len(ranked) == 100 and len(ranked.reference) == 200


def plant_leaks(train: Dataset, test: Dataset, rng) -> tuple[list, list]:
    """Train: 60 distinct images plus a family of 14 near-copies (more than K = 10, so the
    neighbour lists are full at the threshold); test: 30 distinct, 4 near-copies of train
    images and 3 near-copies of the family's original."""
    base = unit(rng.normal(size=(60, DIMS)))
    original = unit(rng.normal(size=DIMS))
    family = unit(original + rng.normal(0, 0.02, (14, DIMS)))
    train_ids = add_vectors(train, np.vstack([base, family]))
    copies = unit(base[:4] + rng.normal(0, 0.02, (4, DIMS)))
    of_family = unit(original + rng.normal(0, 0.02, (3, DIMS)))
    test_ids = add_vectors(test, np.vstack([unit(rng.normal(size=(30, DIMS))), copies, of_family]),
                           start=5000)
    return train_ids, test_ids


def brute_pairs(train_ids, test_ids, threshold: float) -> dict:
    a_ids, a = stored(train_ids)
    b_ids, b = stored(test_ids)
    sims = a @ b.T
    return {(a_ids[i], b_ids[j]): float(sims[i, j])
            for i, j in zip(*np.nonzero(sims >= threshold), strict=True)}


@pytest.mark.parametrize("threshold", [0.9, 0.97])
def test_leakage_pairs_equal_a_brute_force_scan(alice, threshold, monkeypatch):
    project = factories.project("leaks", {alice: "editor"})
    train = Dataset.objects.create(project=project, name="train")
    test = Dataset.objects.create(project=project, name="test")
    train_ids, test_ids = plant_leaks(train, test, np.random.default_rng(5))
    stage.analyse_project(str(project.pk), hash_files=False)
    expected = brute_pairs(train_ids, test_ids, threshold)
    assert len(expected) > 3 * neighbours.K  # the family's copies: more than a list holds
    found = leaks.leakage(str(project.pk), str(train.pk), str(test.pk), threshold, user=alice)
    got = {(p.a_asset_id, p.b_asset_id): p.similarity for p in found.pairs}
    assert set(got) == set(expected)
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()), abs=2e-3)
    assert found.rescanned > 0  # the full lists were compared exactly
    sims = [p.similarity for p in found.pairs]
    assert sims == sorted(sims, reverse=True)
    # bounded: at most MAX_PAIRS kept, the most similar, and the answer says so
    monkeypatch.setattr(leaks, "MAX_PAIRS", 5)
    monkeypatch.setattr(leaks, "_answers", type(leaks._answers)())
    capped = leaks.leakage(str(project.pk), str(train.pk), str(test.pk), threshold, user=alice)
    assert capped.truncated and [p.similarity for p in capped.pairs] == sims[:5]
    monkeypatch.setattr(leaks, "MAX_PAIRS", 10_000)
    monkeypatch.setattr(leaks, "_answers", type(leaks._answers)())
    # a list written before its partner was analysed (a stale list on the smaller side):
    # the partner's own, newer list still names the pair
    from similarity.models import Neighbours

    a_row, b_row = next((p.a_row, p.b_row) for p in found.pairs
                        if Neighbours.objects.get(pk=p.b_row).kth < threshold)
    stale = Neighbours.objects.get(pk=b_row)
    keep = [i for i, other in enumerate(stale.neighbour_ids) if other != a_row]
    Neighbours.objects.filter(pk=b_row).update(
        neighbour_ids=[stale.neighbour_ids[i] for i in keep],
        similarities=[stale.similarities[i] for i in keep])
    monkeypatch.setattr(leaks, "_answers", type(leaks._answers)())
    again = leaks.leakage(str(project.pk), str(train.pk), str(test.pk), threshold, user=alice)
    assert (a_row, b_row) in {(p.a_row, p.b_row) for p in again.pairs}
    # the same pairs whichever side is named first, oriented as asked
    swapped = leaks.leakage(str(project.pk), str(test.pk), str(train.pk), threshold, user=alice)
    assert {(p.b_asset_id, p.a_asset_id) for p in swapped.pairs} == set(expected)


def test_curation_api_answers_bounds_and_permissions(two_datasets, alice):
    project, train, test, train_ids, _test_ids = two_datasets
    viewer, outsider = factories.user(), factories.user()
    factories.project("other", {outsider: "editor"})
    from datasets.models import ProjectMembership

    ProjectMembership.objects.create(project=project, user=viewer, role="viewer")
    clients = {}
    for name, who in (("alice", alice), ("viewer", viewer), ("outsider", outsider)):
        clients[name] = APIClient()
        clients[name].force_authenticate(who)
    base = f"/api/projects/{project.pk}"
    answer = clients["viewer"].post(f"{base}/diverse/", {"count": 5, "dataset": str(train.pk)},
                                    format="json")
    assert answer.status_code == 200, answer.content
    assert answer.data["count"] == 5 and answer.data["results"][0]["distance"] is None
    assert {r["asset"]["id"] for r in answer.data["results"]} <= set(train_ids)
    for body, field in (({"count": 1001}, "count"), ({"count": 0}, "count"),
                        ({"count": "many"}, "count"), ({"dataset": "999999"}, "dataset"),
                        ({"exclude_similar_to": "x"}, "exclude_similar_to"),
                        ({"dataset": str(train.pk), "exclude_similar_to": [str(train.pk)]},
                         "exclude_similar_to"), ({"ids": ["no-such-image"]}, "ids")):
        refused = clients["alice"].post(f"{base}/diverse/", body, format="json")
        assert refused.status_code == 400, (body, refused.content)
        assert field in str(refused.data)
    coverage = clients["viewer"].get(f"{base}/coverage/", {"candidates": test.pk,
                                                           "reference": train.pk, "limit": 10})
    assert coverage.status_code == 200 and coverage.data["count"] == 100
    assert len(coverage.data["results"]) == 10
    sims = [r["similarity"] for r in coverage.data["results"]]
    assert sims == sorted(sims)
    page2 = clients["viewer"].get(f"{base}/coverage/", {"candidates": test.pk,
                                                        "reference": train.pk, "limit": 10,
                                                        "offset": 10})
    assert page2.data["results"][0]["similarity"] >= sims[-1]
    assert clients["viewer"].get(f"{base}/coverage/", {"candidates": test.pk}).status_code == 400
    assert clients["viewer"].get(f"{base}/coverage/", {
        "candidates": test.pk, "reference": test.pk}).status_code == 400
    assert clients["viewer"].get(f"{base}/coverage/", {
        "candidates": test.pk, "reference": train.pk, "diverse": 5000}).status_code == 400
    # the leakage report waits for the analysis, then answers
    assert clients["viewer"].get(f"{base}/leakage/", {"a": train.pk, "b": test.pk}).status_code == 409
    stage.analyse_project(str(project.pk), hash_files=False)
    leak = clients["viewer"].get(f"{base}/leakage/", {"a": train.pk, "b": test.pk, "threshold": 0.8})
    assert leak.status_code == 200 and leak.data["count"] == len(
        brute_pairs(train_ids, _test_ids, 0.8)) > 0
    assert leak.data["behind"] is False and leak.data["truncated"] is False
    assert clients["viewer"].get(f"{base}/leakage/", {"a": train.pk, "b": train.pk}).status_code == 400
    assert clients["viewer"].get(f"{base}/leakage/", {"a": train.pk, "b": test.pk,
                                                      "threshold": 0.5}).status_code == 400
    for path, method in (("diverse/", "post"), ("coverage/", "get"), ("leakage/", "get")):
        call = getattr(clients["outsider"], method)
        assert call(f"{base}/{path}", {"a": train.pk, "b": test.pk, "candidates": test.pk,
                                       "reference": train.pk}).status_code == 404
    # viewers read; acting on the picks is an editor's bulk action
    copy = clients["viewer"].post(f"{base}/actions/copy/", {
        "ids": [str(r["asset"]["id"]) for r in answer.data["results"]], "dataset": test.pk},
        format="json")
    assert copy.status_code in (403, 404)


def test_curation_pages_show_picks_rankings_and_pairs(two_datasets, alice, client):
    project, train, test, train_ids, _test_ids = two_datasets
    viewer, outsider = factories.user(), factories.user()
    from datasets.models import ProjectMembership

    ProjectMembership.objects.create(project=project, user=viewer, role="viewer")
    client.force_login(alice)
    diverse = client.get(f"/similarity/projects/{project.pk}/diverse/",
                         {"count": 8, "dataset": train.pk})
    html = diverse.content.decode()
    assert diverse.status_code == 200 and html.count('<li class="tile') == 8
    assert "start: most typical" in html and 'data-action="copy"' in html
    picks = curate.pick_diverse(str(project.pk), 8, user=alice, group=str(train.pk))
    assert [f'data-asset-id="{p.asset_id}"' in html for p in picks.picks] == [True] * 8
    assert client.get(f"/similarity/projects/{project.pk}/diverse/",
                      {"count": 5000}).status_code == 400
    coverage = client.get(f"/similarity/projects/{project.pk}/coverage/",
                          {"candidates": test.pk, "reference": train.pk})
    assert coverage.status_code == 200 and "100 images ranked against 200" in coverage.content.decode()
    waiting = client.get(f"/similarity/projects/{project.pk}/leakage/")
    assert waiting.status_code == 200 and "insight-progress" in waiting.content.decode()
    stage.analyse_project(str(project.pk), hash_files=False)
    leak = client.get(f"/similarity/projects/{project.pk}/leakage/", {"threshold": 0.8})
    body = leak.content.decode()
    expected = len(brute_pairs(train_ids, _test_ids, 0.8))
    assert leak.status_code == 200 and f"{expected} pairs" in body  # train/test by default
    assert body.count('data-testid="leak-pair"') == min(expected, 50)
    # viewers read and select, but are offered no write action; outsiders get 404
    client.force_login(viewer)
    html = client.get(f"/similarity/projects/{project.pk}/diverse/", {"count": 3}).content.decode()
    assert html.count('<li class="tile') == 3 and 'data-action="copy"' not in html
    client.force_login(outsider)
    for page in ("diverse", "coverage", "leakage"):
        assert client.get(f"/similarity/projects/{project.pk}/{page}/").status_code == 404


def test_images_copied_from_train_to_test_are_exactly_the_leaked_pairs(
    alice, client, django_capture_on_commit_callbacks
):
    """Real files, the real embedding and insight tasks, the real Copy bulk action."""
    from similarity import insight_tasks, tasks
    from tests.test_insight_views import encode, scene

    project = factories.project("split", {alice: "editor"})
    train = Dataset.objects.create(project=project, name="train")
    test = Dataset.objects.create(project=project, name="test")
    with django_capture_on_commit_callbacks(execute=True):
        originals = [factories.asset(train, f"train{i}.png", encode(scene(i))) for i in range(6)]
        for i in range(6, 9):
            factories.asset(test, f"test{i}.png", encode(scene(i)))
    client.force_login(alice)
    copied = originals[1:4]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/similarity/projects/{project.pk}/actions/copy/", {
            "ids": [str(a.pk) for a in copied], "copy-dataset": str(test.pk), "next": "/"})
    assert response.status_code == 302
    assert test.assets.count() == 6
    tasks.embed_project(str(project.pk))
    insight_tasks.run_until_done(str(project.pk))
    api = APIClient()
    api.force_authenticate(alice)
    answer = api.get(f"/api/projects/{project.pk}/leakage/",
                     {"a": train.pk, "b": test.pk, "threshold": 0.995})
    assert answer.status_code == 200, answer.content
    from datasets.models import Asset

    name_of = dict(Asset.objects.values_list("pk", "original_filename"))
    pairs = {(r["a"]["id"], name_of[r["b"]["id"]]): (r["similarity"], r["identical"])
             for r in answer.data["results"]}
    assert all(name_of[r["b"]["id"]] and r["b"]["id"] in set(test.assets.values_list("pk", flat=True))
               for r in answer.data["results"])
    assert pairs == {(a.pk, a.original_filename): (1.0, True) for a in copied}
    assert answer.data["identical"] == 3 and answer.data["b_copies"] == 3


def test_the_demo_project_shows_a_leakage_report_on_first_run(django_capture_on_commit_callbacks):
    from assetsite.demo import seed_demo
    from datasets.models import Asset, Project
    from similarity import insight_tasks, tasks

    with django_capture_on_commit_callbacks(execute=True):
        username, _password = seed_demo()
    project = Project.objects.get()
    tasks.embed_project(str(project.pk))
    insight_tasks.run_until_done(str(project.pk))
    train, test = (Dataset.objects.get(project=project, name=n) for n in ("train", "test"))
    demo = factories.get_user_model().objects.get(username=username)
    found = leaks.leakage(str(project.pk), str(train.pk), str(test.pk), 0.995, user=demo)
    names = dict(Asset.objects.values_list("pk", "original_filename"))
    pairs = {(names[p.a_asset_id], names[p.b_asset_id]): p.identical for p in found.pairs}
    assert pairs[("train_stripes_red.jpg", "test_stripes_red.jpg")] is True
    assert pairs[("train_rings_blue.jpg", "test_rings_blue.jpg")] is True
    assert pairs[("train_checkers_blue.jpg", "test_checkers_blue_q70.jpg")] is False
    assert found.identical == 2  # the two byte-identical copies, first
    assert [p.identical for p in found.pairs[:2]] == [True, True]


def test_a_partial_viewer_picks_ranks_and_compares_only_what_they_may_see(alice, settings):
    """Per-asset narrowing (tests/test_partial_visibility.py's policy: viewers never see
    "hidden*" files): hidden images are never picked, ranked, used as a reference or paired."""
    from datasets.models import Asset, ProjectMembership

    settings.SIMILARITY = {**settings.SIMILARITY,
                           "ACCESS_POLICY": "tests.test_partial_visibility.HiddenFromViewers"}
    project = factories.project("partial", {alice: "editor"})
    carol = factories.user()
    ProjectMembership.objects.create(project=project, user=carol, role="viewer")
    train = Dataset.objects.create(project=project, name="train")
    test = Dataset.objects.create(project=project, name="test")
    rng = np.random.default_rng(9)
    base = unit(rng.normal(size=(20, DIMS)))
    train_ids = add_vectors(train, base)
    test_ids = add_vectors(test, np.vstack([base[:4], unit(rng.normal(size=(6, DIMS)))]), start=500)
    hidden = train_ids[:2] + test_ids[2:3]
    Asset.objects.filter(pk__in=hidden).update(original_filename="hidden.png")
    stage.analyse_project(str(project.pk), hash_files=False)
    scope = str(project.pk)
    picks = curate.pick_diverse(scope, 1000, user=carol)
    assert len(picks.picks) == 27 and not {p.asset_id for p in picks.picks} & set(hidden)
    ids, vectors = stored([a for a in train_ids + test_ids if a not in hidden])
    assert [p.asset_id for p in picks.picks] == [ids[i] for i in brute_greedy(vectors, 1000)[0]]
    ranked = curate.rank_coverage(scope, str(test.pk), [str(train.pk)], user=carol)
    assert len(ranked) == 9 and len(ranked.reference) == 18
    assert not {i.nearest_asset_id for i in ranked.items()} & set(hidden)
    pairs = leaks.leakage(scope, str(train.pk), str(test.pk), 0.99, user=carol).pairs
    assert {(p.a_asset_id, p.b_asset_id) for p in pairs} == {(train_ids[3], test_ids[3])}
    every = leaks.leakage(scope, str(train.pk), str(test.pk), 0.99, user=alice).pairs
    assert len(every) == 4


@pytest.mark.parametrize(("block", "columns"), [(5, 7), (64, 1000), (3, 2)])
def test_nearest_similarity_in_tiles_equals_numpy(block, columns):
    from similarity.vectors.rows import nearest_similarity

    rng = np.random.default_rng(block * columns)
    queries, reference = unit(rng.normal(size=(37, DIMS))), unit(rng.normal(size=(53, DIMS)))
    reference[10] = reference[40]  # a tie: the lower position wins
    best, where = nearest_similarity(queries, reference, block=block, columns=columns)
    sims = queries.astype(np.float64) @ reference.T.astype(np.float64)
    assert best == pytest.approx(sims.max(axis=1), abs=1e-5)
    assert where.tolist() == sims.argmax(axis=1).tolist()
    empty = nearest_similarity(queries, reference[:0])
    assert (empty[1] == -1).all() and np.isneginf(empty[0]).all()
