from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from similarity import embedders
from tests import factories


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    yield
    embedders.forget_loaded_models()


@pytest.fixture
def alice(db):
    return factories.user("alice")


@pytest.fixture
def bob(db):
    return factories.user("bob")


@pytest.fixture
def project_a(alice):
    return factories.project("A", {alice: "editor"})


@pytest.fixture
def project_b(bob):
    return factories.project("B", {bob: "editor"})


@pytest.fixture
def dataset_a(project_a):
    return factories.dataset(project_a, "cams")


@pytest.fixture
def dataset_b(project_b):
    return factories.dataset(project_b, "other")


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def web(client, alice):
    client.force_login(alice)
    return client
