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
