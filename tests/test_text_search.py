"""Text search (issue 22): a tiny random-weight SigLIP beside the tiny DINOv2, both loaded
through ``from_pretrained``; the worker embeds both from one decode, the API and the pages
search by description, and the setting turns the text model on and off.

These tests embed queries in the web process (QUERY_EMBEDDING "web"); a real qcluster
embeds them in test_text_search_worker.py.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from similarity import tasks
from similarity.embedding import readiness, sweep, worker
from similarity.models import Embedding, TextQuery
from similarity.vectors import model_keys, text_model
from similarity.vectors.images import load_rgb
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def text_on(settings, siglip_folder):
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(siglip_folder),
                           "QUERY_EMBEDDING": "web"}
    return siglip_folder


def unit(vector) -> np.ndarray:
    array = np.asarray(getattr(vector, "to_list", lambda: vector)(), dtype=np.float64)
    return array / np.linalg.norm(array)


def add_images(dataset, count: int, capture, start: int = 0) -> list:
    with capture(execute=True):
        return [factories.asset(dataset, f"img{i}.png", factories.pattern_image(i % 4, seed=i))
                for i in range(start, start + count)]


def text_rows(project_id) -> list[Embedding]:
    return list(Embedding.objects.filter(project_id=str(project_id),
                                         model_key=model_keys.text_model_key()))


def numpy_order(project_id, query: np.ndarray, order: str = "most") -> list[tuple]:
    scored = [(float(unit(row.vector) @ query), row.asset_id) for row in text_rows(project_id)
              if row.status == "done"]
    scored.sort(key=lambda t: (-t[0], t[1]) if order == "most" else (t[0], t[1]))
    return [(pk, sim) for sim, pk in scored]


def search(api, project_id, **body):
    return api.post(f"/api/projects/{project_id}/similar/", body, format="json")


def test_the_worker_decodes_each_image_once_and_embeds_both_models(
        text_on, dataset_a, django_capture_on_commit_callbacks, monkeypatch):
    decodes = []

    def counting_load_rgb(fp, **kwargs):
        decodes.append(kwargs.get("draft"))
        return load_rgb(fp, **kwargs)

    monkeypatch.setattr(worker, "load_rgb", counting_load_rgb)
    images = add_images(dataset_a, 7, django_capture_on_commit_callbacks)
    outcome = tasks.embed_project(dataset_a.project_id)
    assert (outcome["embedded"], outcome["text_embedded"]) == (7, 7)
    assert len(decodes) == 7  # one decode per image feeds both models
    keys = dict(Embedding.objects.filter(status="done").values_list("model_key").annotate(
        n=__import__("django.db.models", fromlist=["Count"]).Count("pk")))
    assert keys == {model_keys.current_model_key(): 7, model_keys.text_model_key(): 7}
    # the text model's vectors are its image tower's embeddings of the same pixels
    tower = text_model.get_image_tower()
    rgb = load_rgb(io.BytesIO(images[3].file.open("rb").read()))
    expected = unit(tower.embed(tower.prepare(rgb)[None])[0])
    stored = Embedding.objects.get(asset=images[3], model_key=tower.model_key)
    assert stored.dims == tower.dims == 32
    assert float(unit(stored.vector) @ expected) > 0.999


def test_api_text_search_orders_as_numpy_over_the_text_models_vectors(
        text_on, dataset_a, api, django_capture_on_commit_callbacks):
    add_images(dataset_a, 9, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    query = unit(text_model.get_text_tower().embed_texts(["a cracked casing"])[0])
    for order in ("most", "least"):
        for limit in (4, 9, 50):
            response = search(api, dataset_a.project_id, text="  A  cracked casing ",
                              order=order, limit=limit)
            assert response.status_code == 200, response.content
            body = response.json()
            assert body["query"] == {"text": "A cracked casing"}  # the text, never an asset
            assert body["queries"] == [body["query"]]
            assert body["model"] == model_keys.text_model_key()
            got = [(r["asset"]["id"], r["similarity"]) for r in body["results"]]
            want = numpy_order(dataset_a.project_id, query, order)[:limit]
            assert len(got) == min(limit, 9)
            assert [pk for pk, _ in got] == [pk for pk, _ in want]
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=2e-3)
    # embedded once, whatever the spacing and however often it is asked for
    assert TextQuery.objects.filter(text="A cracked casing").count() == 1


def test_min_similarity_applies_to_text_scores(text_on, dataset_a, api,
                                               django_capture_on_commit_callbacks):
    add_images(dataset_a, 6, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    every = search(api, dataset_a.project_id, text="red car").json()["results"]
    cut = every[2]["similarity"]
    kept = search(api, dataset_a.project_id, text="red car", min_similarity=cut).json()
    assert [r["asset"]["id"] for r in kept["results"]] == [r["asset"]["id"] for r in every[:3]]


def test_outsiders_get_404_and_nothing_is_embedded_for_them(text_on, dataset_a, bob):
    from rest_framework.test import APIClient

    other = APIClient()
    other.force_authenticate(bob)
    response = search(other, dataset_a.project_id, text="red car")
    assert response.status_code == 404
    assert not TextQuery.objects.exists()


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   \n ", "empty"),
    ("x" * 10_000, "10000 characters long; the most is 500"),
    ("red\x07car", "control characters (U+0007)"),
    ("red\u200bcar", "control characters (U+200B)"),
])
def test_bad_descriptions_are_400_naming_the_reason(text_on, dataset_a, api, text, reason):
    response = search(api, dataset_a.project_id, text=text)
    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]
    assert not TextQuery.objects.exists()


def test_text_with_images_in_the_same_query_is_refused(text_on, dataset_a, api,
                                                       django_capture_on_commit_callbacks):
    images = add_images(dataset_a, 2, django_capture_on_commit_callbacks)
    response = search(api, dataset_a.project_id, text="red car", positive=[images[0].pk])
    assert response.status_code == 400
    assert "alone" in str(response.json())


def test_text_search_without_a_text_model_is_400(dataset_a, api, settings):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}
    response = search(api, dataset_a.project_id, text="red car")
    assert response.status_code == 400
    assert response.json()["code"] == "text_search_off"
    assert "not configured" in response.json()["detail"]


def test_turning_the_text_model_on_embeds_the_library_and_off_deletes_its_rows(
        dataset_a, api, settings, siglip_folder, django_capture_on_commit_callbacks):
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "web"}
    add_images(dataset_a, 5, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    scope = str(dataset_a.project_id)
    assert readiness.as_dict(readiness.get_readiness(scope))["text"] is None

    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(siglip_folder)}
    image_rows = dict(Embedding.objects.values_list("pk", "updated"))
    sweep.sweep()  # the sweep (or a worker's start) writes the text model's rows
    state = readiness.as_dict(readiness.get_readiness(scope))
    assert (state["state"], state["embedded"]) == ("ready", 5)  # image search: unaffected
    assert state["text"]["state"] == "computing" and state["text"]["pending"] == 5
    assert state["text"]["searchable"] is False
    # while it computes, text search answers what is embedded (nothing yet), and says so
    body = search(api, scope, text="red car").json()
    assert (body["results"], body["ready"]) == ([], False)

    tasks.embed_project(scope)
    state = readiness.as_dict(readiness.get_readiness(scope))
    assert state["text"]["state"] == "ready" and state["text"]["embedded"] == 5
    assert len(search(api, scope, text="red car").json()["results"]) == 5
    # the image model's rows were not re-embedded for it
    assert {pk: u for pk, u in Embedding.objects.filter(pk__in=image_rows)
            .values_list("pk", "updated")} == image_rows

    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": None}
    assert search(api, scope, text="red car").status_code == 400
    outcome = sweep.sweep()
    assert outcome["purged"] == 5
    assert set(Embedding.objects.values_list("model_key", flat=True)) == {
        model_keys.current_model_key()}


@pytest.mark.django_db(transaction=True)  # CREATE INDEX needs no pending trigger events
def test_a_large_project_searches_text_through_its_own_hnsw_index(
        text_on, dataset_a, api, settings, django_capture_on_commit_callbacks):
    """Past EXACT_SEARCH_MAX_ROWS the text model's rows get an HNSW index of their own,
    beside DINOv2's (neither drops the other); most-similar text search answers through
    it (``exact`` false) in NumPy's order; least similar stays exact; turning the text
    model off lets the sweep drop its index and keep the image model's."""
    from similarity.search import text as text_search
    from similarity.vectors import hnsw

    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_SEARCH_MAX_ROWS": 4}
    add_images(dataset_a, 8, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    scope = str(dataset_a.project_id)
    text_index = hnsw.index_name(scope, model_keys.text_model_key())
    image_index = hnsw.index_name(scope, model_keys.current_model_key())
    assert hnsw.index_exists(text_index) and hnsw.index_exists(image_index)
    assert readiness.get_readiness(scope).indexed_model_key == model_keys.current_model_key()
    query = unit(text_model.get_text_tower().embed_texts(["a round dark part"])[0])
    result = text_search.search_text(scope, "a round dark part", order="most", limit=5,
                                    state=readiness.text_readiness(readiness.get_readiness(scope)))
    assert result.exact is False  # through the text model's index
    want = numpy_order(scope, query, "most")[:5]
    assert [str(m.asset.pk) for m in result.matches] == [str(pk) for pk, _ in want]
    least = text_search.search_text(scope, "a round dark part", order="least", limit=5,
                                   state=readiness.text_readiness(readiness.get_readiness(scope)))
    assert least.exact is True
    assert [str(m.asset.pk) for m in least.matches] == [
        str(pk) for pk, _ in numpy_order(scope, query, "least")[:5]]
    # the image model's index is still what image search uses
    body = api.get(f"/api/assets/{result.matches[0].asset.pk}/similar/?limit=3").json()
    assert body["exact"] is False
    # text model off: its rows go with the sweep, and its index with them
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": None}
    sweep.sweep()
    assert not hnsw.index_exists(text_index) and hnsw.index_exists(image_index)
    hnsw.drop_other_indexes(scope)  # committed: leave no index behind for other tests


def test_readiness_with_the_image_model_ready_and_the_text_model_computing(
        text_on, dataset_a, django_capture_on_commit_callbacks, monkeypatch, web):
    add_images(dataset_a, 4, django_capture_on_commit_callbacks)
    # the text model's rows wait (claimed elsewhere, or a slow text model): the image
    # model's finish first and image search does not wait for them
    monkeypatch.setattr(worker, "_claim_companions", lambda *args: [])
    real_batches = worker._batches

    def image_only(project_id, key, *args, **kwargs):
        if key == model_keys.text_model_key():
            return iter(())
        return real_batches(project_id, key, *args, **kwargs)

    monkeypatch.setattr(worker, "_batches", image_only)
    tasks.embed_project(dataset_a.project_id)
    scope = str(dataset_a.project_id)
    state = readiness.as_dict(readiness.get_readiness(scope))
    assert (state["state"], state["searchable"]) == ("ready", True)
    assert (state["text"]["state"], state["text"]["embedded"], state["text"]["total"]) == (
        "computing", 0, 4)
    page = web.get(reverse("datasets:dataset", args=[dataset_a.pk])).content.decode()
    assert "Text search: computing 0 of 4" in page


def test_a_text_model_that_cannot_load_leaves_image_search_alone(
        dataset_a, settings, tmp_path, django_capture_on_commit_callbacks):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "model.safetensors").write_bytes(b"not weights")
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": str(broken)}
    add_images(dataset_a, 3, django_capture_on_commit_callbacks)
    outcome = tasks.embed_project(dataset_a.project_id)
    assert outcome["embedded"] == 3
    state = readiness.as_dict(readiness.get_readiness(dataset_a.project_id))
    assert state["state"] == "ready" and state["error"] == ""
    assert state["text"]["state"] == "failed"
    assert "Could not load the text model" in state["text"]["error_summary"]


def test_text_model_preprocessing_equals_the_transformers_processor(siglip_folder):
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(siglip_folder)
    prepare = text_model.ImagePreprocessing.from_folder(siglip_folder, 64)
    rng = np.random.default_rng(3)
    worst = 0.0
    for width, height in [(300, 200), (64, 64), (1000, 37), (17, 900), (256, 256)]:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        theirs = processor(images=image, return_tensors="np")["pixel_values"][0]
        mine = prepare(image)
        assert mine.shape == theirs.shape == (3, 64, 64)
        worst = max(worst, float(np.abs(mine - theirs).max()))
    assert worst <= 1e-6


def test_the_text_tower_loads_without_the_image_towers(text_on):
    tower = text_model.get_text_tower()
    vectors = tower.embed_texts(["Red car", "red   car", "a photo of a dog"])
    assert vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.9999  # one form of the same description
    assert type(tower.model).__name__ == "SiglipTextModel"
    assert not any(slot[0] == "image" for slot in text_model._loaded)


def test_the_description_box_and_the_results_page(text_on, dataset_a, web, client, bob, settings,
                                                  django_capture_on_commit_callbacks):
    add_images(dataset_a, 5, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    dataset_page = reverse("datasets:dataset", args=[dataset_a.pk])
    assert "Describe what you are looking for" in web.get(dataset_page).content.decode()
    url = reverse("similarity:text-search", args=[dataset_a.project_id])
    page = web.get(url, {"q": "red  car", "target": dataset_a.pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert "“red car”" in html and html.count('data-asset-id="') == 5
    assert "text model" in html  # the legend names the space the scores are in
    assert 'data-testid="back-to-dataset"' in html
    assert 'name="text" value="red car"' in html  # "Save this search" saves the text
    # both orders on the page, as the API ranks them
    least = web.get(url, {"q": "red car", "order": "least"}).content.decode()
    ids = [int(pk) for pk in re.findall(r'data-asset-id="(\d+)"', html)]
    assert [int(pk) for pk in re.findall(r'data-asset-id="(\d+)"', least)] == ids[::-1]
    refused = web.get(url, {"q": "   "})
    assert refused.status_code == 400 and "the description is empty" in refused.content.decode()
    client.force_login(bob)
    assert client.get(url, {"q": "red car"}).status_code == 404
    settings.SIMILARITY = {**settings.SIMILARITY, "TEXT_MODEL_NAME": None}
    assert "Describe what you are looking for" not in web.get(dataset_page).content.decode()


def test_saving_a_description_from_the_results_page(text_on, dataset_a, web,
                                                    django_capture_on_commit_callbacks):
    from similarity.models import SavedSearch

    add_images(dataset_a, 3, django_capture_on_commit_callbacks)
    tasks.embed_project(dataset_a.project_id)
    response = web.post(reverse("similarity:saved-search-create"), {
        "project_id": dataset_a.project_id, "name": "dents", "text": "dented casing",
        "order": "most", "threshold": "-1"})
    assert response.status_code == 302
    saved = SavedSearch.objects.get(name="dents")
    assert (saved.text, saved.model_key) == ("dented casing", model_keys.text_model_key())
    query = unit(text_model.get_text_tower().embed_texts(["dented casing"])[0])
    assert float(unit(saved.vector) @ query) > 0.999
    # new uploads are matched against it: the text model's rows of the batch
    add_images(dataset_a, 2, django_capture_on_commit_callbacks, start=10)
    tasks.embed_project(dataset_a.project_id)
    from similarity.models import Notification

    # named like every saved search: by its name, "match" since it is a description
    assert Notification.objects.filter(message="2 new images match “dents”").count() == 1
    run = web.get(reverse("similarity:saved-search-run", args=[saved.pk]))
    assert run.status_code == 302 and "text-search" in run["Location"]


@pytest.mark.integration
def test_text_search_on_a_host_with_uuid_keys():
    from tests.hosts.runner import run_host_suite

    output = run_host_suite("tests.hosts.uuid_settings", "text_uuid.py")
    assert "2 passed" in output
