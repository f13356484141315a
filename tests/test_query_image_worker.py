"""QUERY_EMBEDDING "worker" (the default) through a real qcluster: the web process never
loads the model, the worker's loaded model embeds the outside image."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from similarity.embedding import readiness
from similarity.models import QueryImage
from similarity.vectors import embedder, model_keys
from tests import factories
from tests.conftest import wait_for
from tests.test_query_image import OUTSIDE, numpy_ranking, unit

pytestmark = pytest.mark.integration


def test_worker_mode_embeds_with_the_workers_model(worker, dataset_a, alice, settings):
    images = [factories.asset(dataset_a, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
              for i in range(5)]
    scope = str(dataset_a.project_id)
    wait_for(lambda: readiness.get_readiness(scope).state == "ready", timeout=120,
             message=f"the worker embedding the images ({worker.log_path})")
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker",
                           "QUERY_TIMEOUT": 60}
    embedder.forget_loaded_models()
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/projects/{scope}/similar/",
                        {"image": factories.upload("outside.png", OUTSIDE)}, format="multipart")
    assert response.status_code == 200, (response.content, worker.log_path.read_text()[-3000:])
    body = response.json()
    assert not embedder._loaded  # embedded by the worker, not here
    query = QueryImage.objects.get(pk=body["query"]["id"])
    assert (query.error, query.model_key) == ("", model_keys.current_model_key())
    # the worker's vector is the model's embedding of this very image (computed here,
    # after the request, through the same preprocessing), not just any vector
    import io

    from similarity.vectors.preprocess import load_and_preprocess

    expected = unit(embedder.get_embedder().embed(
        load_and_preprocess(io.BytesIO(OUTSIDE))[None])[0])
    assert float(unit(query.vector) @ expected) > 0.9995
    got = [(r["asset"]["id"], r["similarity"]) for r in body["results"]]
    want = numpy_ranking(images, expected)
    assert [pk for pk, _ in got] == [pk for pk, _ in want] or np.allclose(
        [s for _, s in got], [s for _, s in want], atol=2e-3)
    assert len(got) == 5


def test_worker_mode_searches_a_region_and_computes_its_match_map(worker, dataset_a, alice,
                                                                  settings):
    """Issue 25 through a real qcluster: the region is embedded and the match map computed
    by the worker's model; the web process loads none."""
    from similarity.models import MatchMap
    from tests.test_look_closer import photo

    images = [factories.asset(dataset_a, f"photo{i}.png", photo(seed=i)) for i in range(4)]
    scope = str(dataset_a.project_id)
    wait_for(lambda: readiness.get_readiness(scope).state == "ready", timeout=120,
             message=f"the worker embedding the images ({worker.log_path})")
    settings.SIMILARITY = {**settings.SIMILARITY, "QUERY_EMBEDDING": "worker",
                           "QUERY_TIMEOUT": 60}
    embedder.forget_loaded_models()
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/projects/{scope}/similar/",
                        {"asset": images[0].pk, "region": [0.1, 0.2, 0.5, 0.5]}, format="json")
    assert response.status_code == 200, (response.content, worker.log_path.read_text()[-3000:])
    body = response.json()
    assert len(body["results"]) == 3 and body["query"]["region"] == [0.1, 0.2, 0.5, 0.5]
    match = api.get(f"/api/query-images/{body['query']['id']}/match/{images[2].pk}/")
    assert match.status_code == 200, (match.content, worker.log_path.read_text()[-3000:])
    assert match.json()["grid"] == {"rows": 16, "columns": 21}
    assert not embedder._loaded  # both by the worker, not here
    kept = MatchMap.objects.get()
    assert kept.error == "" and kept.rows == 16
    # the worker's map is the model's own: the same numbers computed here afterwards
    from similarity.match import computing

    here = computing._compute_here(computing.prepare(
        alice, images[2].pk, query_image=body["query"]["id"]))[0]
    assert np.allclose(np.array(match.json()["values"]), here, atol=2e-3)
