"""A host with no projects: one site-wide scope, and the default staff-only policy."""

from __future__ import annotations

import pytest

from similarity import tasks
from similarity.embedding import readiness
from similarity.host import scopes
from similarity.models import Embedding
from similarity.search import find_similar

pytestmark = pytest.mark.django_db


def test_one_scope_for_the_whole_site(owner, stranger, add_photo, api_for):
    photos = [add_photo(None, f"s{i}", kind=i % 2, seed=i) for i in range(3)]
    assert scopes.SITE_SCOPE == "site"
    assert set(Embedding.objects.values_list("project_id", flat=True)) == {"site"}
    tasks.embed_project(scopes.SITE_SCOPE)
    state = readiness.get_readiness(scopes.SITE_SCOPE)
    assert (state.state, state.embedded) == ("ready", 3)
    ranked = [match.asset for match in find_similar(photos[0]).matches]
    assert ranked == [photos[2], photos[1]]  # the query is never ranked; same family first
    # staff may search; a non-staff user may not (default policy), whatever DRF says
    assert api_for(owner).get(f"/api/v2/assets/{photos[0].pk}/similar/").status_code == 200
    assert api_for(stranger).get(f"/api/v2/assets/{photos[0].pk}/similar/").status_code == 404
    assert api_for(owner).get("/api/v2/projects/site/similarity/").json()["embedded"] == 3
    for other in ("0", "7", "nope"):
        assert api_for(owner).get(f"/api/v2/projects/{other}/similarity/").status_code == 404


def test_sweep_finds_every_photo(owner, add_photo):
    add_photo(None, "late")
    Embedding.objects.all().delete()
    assert tasks.sweep()["created"] == 1
    assert Embedding.objects.get().project_id == "site"
