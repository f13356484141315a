"""The whole life of a host's images under similarity, for any host (issue 10).

Each host suite (host_photos.py, host_int.py, host_uuid.py, host_char.py) imports these
tests and provides a ``host`` fixture (a tests.hosts.profiles.HostProfile). The host's
own code creates, moves, replaces and deletes assets through its ORM; the worker code
embeds them; every search is checked against NumPy over the stored vectors.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.template import RequestContext, Template
from django.test import RequestFactory
from django.urls import URLPattern, reverse
from PIL import Image
from rest_framework.test import APIClient

from similarity import tasks
from similarity.embedding import readiness
from similarity.models import (
    Embedding,
    Notification,
    ProjectReadiness,
    QueryImage,
    SavedSearch,
)
from similarity.search import NotEmbedded, find_similar
from similarity.vectors import hnsw
from similarity.vectors.model_keys import current_model_key
from tests.hosts.conftest import varied_png

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # cosine; both sides read the same half-precision vectors
SECRET = "Secret Garden"  # in every project name and asset label the outsiders must not see
PAGES_PREFIX, API_PREFIX = "/tools/similar/", "/api/v2/"  # where tests/hosts/urls.py mounts us

pytestmark = pytest.mark.django_db


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def insider(owner):
    """A user the host's policy lets see the projects made by ``make_project``."""
    return owner


@pytest.fixture
def outsider(host, stranger):
    """Logged in, not staff; on hosts with their own policy, the owner of another project
    (so the policy answers a non-empty set that lacks ours)."""
    if not host.staff_sees_all:
        host.new_project("Outsider's own", stranger)
    return stranger


@pytest.fixture
def add_asset(host, django_capture_on_commit_callbacks):
    """Create one asset the way the host would: build it, save the file, save the row."""
    seeds = itertools.count(100)

    def make(project: Any, label: str, seed: int | None = None) -> Any:
        seed = next(seeds) if seed is None else seed
        with django_capture_on_commit_callbacks(execute=True):
            asset = host.new_asset(project, label)
            getattr(asset, host.image_field).save(
                f"{label}.png", ContentFile(varied_png(seed)), save=True
            )
        return asset

    return make


@pytest.fixture
def make_project(host, insider, add_asset):
    """A project of ``count`` assets that ``insider`` may see, optionally embedded."""
    names = itertools.count(1)

    def make(count: int, *, embed: bool = True) -> tuple[Any, list[Any]]:
        number = next(names)
        project = host.new_project(f"{SECRET} {number}", insider)
        assets = [add_asset(project, f"{SECRET} shot {number}-{i}") for i in range(count)]
        if embed:
            tasks.embed_project(host.scope(project))
        return project, assets

    return make


# --- the NumPy reference -----------------------------------------------------------------


def as_floats(vector: Any) -> np.ndarray:
    """A stored vector (pgvector HalfVector or a plain list) as float64."""
    values = vector.to_list() if hasattr(vector, "to_list") else vector
    return np.asarray(values, dtype=np.float64)


def stored_unit_vectors(scope: str) -> tuple[list[Any], np.ndarray]:
    """The scope's embedded asset ids and their stored vectors, L2-normalised."""
    rows = list(
        Embedding.objects.filter(
            project_id=scope, model_key=current_model_key(), status=Embedding.Status.DONE
        ).values_list("asset_id", "vector")
    )
    matrix = np.array([as_floats(vector) for _, vector in rows])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return [pk for pk, _ in rows], matrix


def reference_ranking(scope: str, positives: Any, order: str,
                      negatives: tuple = ()) -> list[tuple[Any, float]]:
    """Every other embedded asset of the scope with its cosine to the query, ranked.

    ``positives`` is one asset key or several; the query vector is then
    normalise(mean(positives) - 0.5 * mean(negatives)) over unit vectors.
    """
    positives = list(positives) if isinstance(positives, (list, tuple)) else [positives]
    ids, matrix = stored_unit_vectors(scope)
    for pk in [*positives, *negatives]:
        assert pk in ids, f"{pk!r} has no vector in scope {scope}"
    query = matrix[[ids.index(pk) for pk in positives]].mean(axis=0)
    if negatives:
        query = query - 0.5 * matrix[[ids.index(pk) for pk in negatives]].mean(axis=0)
    query /= np.linalg.norm(query)
    cosines = matrix @ query
    excluded = {*positives, *negatives}
    pairs = [(pk, float(c)) for pk, c in zip(ids, cosines, strict=True) if pk not in excluded]
    pairs.sort(key=lambda pair: -pair[1] if order == "most" else pair[1])
    return pairs


def assert_ranked_like_numpy(result: Any, scope: str, query: Any, order: str, limit: int = 100,
                             *, expected: list | None = None, excluded: tuple = ()):
    """Exactly min(limit, candidates) rows, never a query, in NumPy's order (ties aside)."""
    if expected is None:
        expected = reference_ranking(scope, query.pk, order)
    got = [match.asset.pk for match in result.matches]
    assert len(got) == min(limit, len(expected)), (len(got), limit, len(expected))
    assert not {query.pk, *excluded} & set(got)
    assert len(set(got)) == len(got)
    cosine = dict(expected)
    for position, (pk, match) in enumerate(zip(got, result.matches, strict=True)):
        assert pk in cosine, f"{pk!r} is not an embedded asset of scope {scope}"
        assert abs(cosine[pk] - expected[position][1]) < TOLERANCE, (
            f"{order} #{position}: got {pk!r} ({cosine[pk]:.5f}), NumPy ranks "
            f"{expected[position][0]!r} ({expected[position][1]:.5f}) there"
        )
        assert abs(match.similarity - cosine[pk]) < 1e-3
    return got


def ranked_ids(asset: Any, order: str = "most") -> list[Any]:
    return [match.asset.pk for match in find_similar(asset, order=order).matches]


def use_search_path(settings: Any, path: str, scope: str) -> None:
    """Switch this process to one of the three search paths (pytest-django restores it)."""
    base = {key: value for key, value in settings.SIMILARITY.items()
            if key not in ("EXACT_CACHE_MB", "EXACT_SEARCH_MAX_ROWS")}
    if path == "cache":
        settings.SIMILARITY = base
    elif path == "sql":
        settings.SIMILARITY = {**base, "EXACT_CACHE_MB": 0}
    elif path == "hnsw":
        settings.SIMILARITY = {**base, "EXACT_SEARCH_MAX_ROWS": 2}
        with connection.cursor() as cursor:  # the test's inserts left deferred FK checks
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert hnsw.ensure_project_index(scope, current_model_key(), force=True)
        assert hnsw.index_exists(hnsw.index_name(scope, current_model_key()))
    else:
        raise ValueError(path)


# --- set-up, embedding, readiness, notifications ------------------------------------------


def column_type(model: Any, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = %s",
            [model._meta.db_table, column],
        )
        return cursor.fetchone()[0]


def test_migrate_made_our_rows_reference_the_hosts_model_and_key_type(host):
    field = Embedding._meta.get_field("asset")
    assert field.related_model is host.asset_model
    pk_column = host.asset_model._meta.pk.column
    assert column_type(Embedding, "asset_id") == column_type(host.asset_model, pk_column)
    for model in (Embedding, ProjectReadiness, Notification):
        assert column_type(model, "project_id") == "character varying"


def test_upload_embed_readiness_and_notifications(host, make_project):
    project, assets = make_project(5, embed=False)
    scope = host.scope(project)
    state = readiness.get_readiness(scope)
    assert (state.state, state.total, state.pending) == ("computing", 5, 5)
    assert Embedding.objects.filter(project_id=scope, status="pending").count() == 5
    tasks.embed_project(scope)
    state = readiness.get_readiness(scope)
    assert (state.state, state.embedded, state.total) == ("ready", 5, 5)
    messages = list(Notification.objects.filter(project_id=scope).order_by("id")
                    .values_list("message", flat=True))
    assert messages == ["5 images added · Similarity search is ready"]  # one per batch
    assert set(Embedding.objects.filter(project_id=scope).values_list("asset_id", flat=True)) \
        == {asset.pk for asset in assets}


def test_a_broken_file_fails_alone_with_a_reason(
        host, make_project, insider, client, django_capture_on_commit_callbacks):
    project, assets = make_project(3, embed=False)
    scope = host.scope(project)
    with django_capture_on_commit_callbacks(execute=True):
        broken = host.new_asset(project, f"{SECRET} broken")
        getattr(broken, host.image_field).save("broken.png", ContentFile(b"not an image"),
                                               save=True)
    tasks.embed_project(scope)
    state = readiness.get_readiness(scope)
    assert (state.state, state.embedded, state.failed) == ("ready", 3, 1)
    row = Embedding.objects.get(asset_id=broken.pk)
    assert row.status == "failed" and "not an image" in row.error
    with pytest.raises(NotEmbedded, match="could not be embedded"):
        find_similar(broken)
    assert broken.pk not in ranked_ids(assets[0]) and len(ranked_ids(assets[0])) == 2
    assert Notification.objects.filter(
        project_id=scope, message__endswith="· 1 image could not be embedded").exists()
    client.force_login(insider)
    page = client.get(reverse("similarity:failed", args=[scope])).content.decode()
    assert host.asset_link(broken) in page and f"{SECRET} broken" in page


@pytest.mark.parametrize("count", [7, 102])
def test_every_search_path_ranks_like_numpy(host, make_project, settings, count):
    """Exact cache, SQL fallback and HNSW: exactly min(100, n-1) rows, NumPy's order."""
    project, assets = make_project(count)
    scope = host.scope(project)
    queries = [assets[0], assets[count // 2]]
    answers = {}
    for path in ("cache", "sql", "hnsw"):
        use_search_path(settings, path, scope)
        for query in queries:
            for order in ("most", "least"):
                result = find_similar(query, order=order)
                answers[path, query.pk, order] = assert_ranked_like_numpy(
                    result, scope, query, order)
                if path == "hnsw" and order == "most":
                    assert result.exact is False  # the index answered
                elif path != "hnsw":
                    assert result.exact is True
        limited = find_similar(queries[0], order="least", limit=3)
        assert_ranked_like_numpy(limited, scope, queries[0], "least", limit=3)


def test_selection_search_with_counter_examples(host, make_project, insider, client):
    """Several examples and counter-examples: NumPy's normalise(mean(p) - 0.5 mean(n))."""
    from similarity.search import find_similar_to_selection

    project, assets = make_project(9)
    scope = host.scope(project)
    positives, negatives = assets[:2], assets[2:3]
    for order in ("most", "least"):
        expected = reference_ranking(scope, [a.pk for a in positives], order,
                                     negatives=(negatives[0].pk,))
        result = find_similar_to_selection(positives, negatives=negatives, order=order)
        assert_ranked_like_numpy(result, scope, positives[0], order, expected=expected,
                                 excluded=tuple(a.pk for a in [*positives, *negatives]))
    client.force_login(insider)
    url = reverse("similarity:selection")
    response = client.get(url, {"ids": ",".join(str(a.pk) for a in positives)})
    assert response.status_code == 200
    page = response.content.decode()
    top = reference_ranking(scope, [a.pk for a in positives], "most")[0][0]
    assert host.asset_link(host.asset_model.objects.get(pk=top)) in page


def test_projects_are_isolated(host, make_project, add_asset):
    _, assets = make_project(4)
    other, others = make_project(3)
    twin = add_asset(other, f"{SECRET} twin", seed=100)  # the same picture as assets[0]
    tasks.embed_project(host.scope(other))
    assert twin.pk not in ranked_ids(assets[0])
    assert set(ranked_ids(twin)) == {asset.pk for asset in others}


# --- pages, API, admin, commands ---------------------------------------------------------


def test_results_page_for_insiders_only_linking_the_hosts_pages(
        host, make_project, insider, outsider, client):
    project, assets = make_project(4)
    url = reverse("similarity:results", args=[assets[0].pk])
    assert url.startswith(PAGES_PREFIX)
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(django_settings.LOGIN_URL)
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(insider)
    for order in ("most", "least"):
        response = client.get(url, {"order": order})
        assert response.status_code == 200
        page = response.content.decode()
        for match in find_similar(assets[0], order=order).matches:
            assert host.asset_link(match.asset) in page
    readiness_url = reverse("similarity:readiness", args=[host.scope(project)])
    assert client.get(readiness_url).json()["embedded"] == 4


def test_api_search_and_readiness(host, make_project, insider, outsider, api_for):
    project, assets = make_project(5)
    scope = host.scope(project)
    query = assets[1]
    url = f"{API_PREFIX}assets/{query.pk}/similar/"
    body = api_for(insider).get(url, {"order": "least", "limit": 3}).json()
    expected = reference_ranking(scope, query.pk, "least")
    assert [str(item["asset"]["id"]) for item in body["results"]] \
        == [str(pk) for pk, _ in expected[:3]]
    by_pk = {str(asset.pk): asset for asset in assets}
    for item in body["results"]:
        assert item["asset"]["url"] == host.asset_link(by_pk[str(item["asset"]["id"])])
    assert str(body["query"]["id"]) == str(query.pk)
    state = api_for(insider).get(f"{API_PREFIX}projects/{scope}/similarity/").json()
    assert (state["ready"], state["embedded"]) == (True, 5)
    # the host's own key: an integer stays an integer, a UUID or a slug its string
    assert state["project"] == (project.pk if isinstance(project.pk, int) else scope)
    listed = api_for(insider).get(f"{API_PREFIX}notifications/").json()["results"]
    assert "5 images added · Similarity search is ready" in {
        item["message"] for item in listed if item["project"] == state["project"]}
    assert api_for(outsider).get(f"{API_PREFIX}notifications/").json()["results"] == []
    assert api_for(outsider).get(url).status_code == 404
    assert api_for(outsider).get(f"{API_PREFIX}projects/{scope}/similarity/").status_code == 404
    assert api_for(None).get(url).status_code in (401, 403)


def test_api_reindex_for_editors_only(host, make_project, insider, outsider, api_for):
    project, assets = make_project(3)
    scope = host.scope(project)
    Embedding.objects.filter(asset_id=assets[0].pk).delete()  # one image never embedded
    url = f"{API_PREFIX}projects/{scope}/similarity/reindex/"
    assert api_for(outsider).post(url).status_code == 404
    insider.is_superuser = True  # the default rule: superusers who see the project
    insider.save()
    response = api_for(insider).post(url)
    assert response.status_code == 202, response.content
    assert response.json()["pending"] == 1
    tasks.embed_project(scope)
    assert readiness.get_readiness(scope).embedded == 3
    Embedding.objects.filter(asset_id=assets[1].pk).update(status="failed", error="x")
    client = APIClient()
    client.force_login(insider)
    page_url = reverse("similarity:reindex", args=[scope])
    assert client.post(page_url, {"next": "/"}).status_code == 302  # the failed page's button
    assert Embedding.objects.get(asset_id=assets[1].pk).status == "pending"


def test_thumbnails_are_generated_for_insiders_only(
        host, make_project, insider, outsider, client, api_for):
    _, assets = make_project(2)
    url = reverse("similarity:thumbnail", args=[assets[0].pk])
    body = api_for(insider).get(f"{API_PREFIX}assets/{assets[0].pk}/similar/").json()
    assert body["query"]["thumbnail_url"] == url
    assert body["results"][0]["asset"]["thumbnail_url"] == reverse(
        "similarity:thumbnail", args=[assets[1].pk])
    client.force_login(insider)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("image/")
    data = b"".join(response.streaming_content) if response.streaming else response.content
    with Image.open(io.BytesIO(data)) as thumbnail:
        assert thumbnail.size == Image.open(getattr(assets[0], host.image_field).path).size
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_admin_status_column_on_the_hosts_own_modeladmin(host, make_project, insider, client):
    """The host registered its ModelAdmin itself; one call adds our column, filter, actions."""
    from django.contrib import admin as django_admin

    from similarity import admin as similarity_admin

    project, assets = make_project(3)
    insider.is_superuser = insider.is_staff = True  # may re-index: the policy's can_edit
    insider.save()
    client.force_login(insider)
    registered = django_admin.site._registry[host.asset_model]
    before = client.get(host.changelist_url()).content.decode()
    if not isinstance(registered, similarity_admin.SimilarityAssetAdminMixin):
        assert "column-embedding_status" not in before
    try:
        similarity_admin.extend_admin(host.asset_model)
        similarity_admin.extend_admin(host.asset_model)  # a second call changes nothing
        reload_urlconf()  # a host calls it from ready() or admin.py, before its URLs load
        page = client.get(host.changelist_url()).content.decode()
        assert page.count('class="column-embedding_status"') == 1
        assert page.count("Embedded") >= len(assets)
        assert "embedding=done" in page  # the status filter
        assert page.count('value="compute_embeddings"') == 1
        Embedding.objects.filter(asset_id=assets[0].pk).update(status="failed", error="x")
        response = client.post(host.changelist_url(), {
            "action": "compute_embeddings", "_selected_action": [str(assets[0].pk)]})
        assert response.status_code == 302
        assert Embedding.objects.get(asset_id=assets[0].pk).status == "pending"
        tasks.embed_project(host.scope(project))
        filtered = client.get(host.changelist_url(), {"embedding": "done"}).content.decode()
        assert filtered.count('name="_selected_action"') == len(assets)
        chosen = [str(assets[1].pk), str(assets[2].pk)]
        response = client.post(host.changelist_url(), {
            "action": "find_similar", "_selected_action": chosen})
        assert response.status_code == 302
        selection = client.get(response["Location"])
        assert selection.status_code == 200, response["Location"]
        assert host.asset_link(assets[0]) in selection.content.decode()  # the only other one
    finally:
        django_admin.site._registry[host.asset_model] = registered
        reload_urlconf()


def reload_urlconf() -> None:
    """admin.site.urls binds the registered ModelAdmin instances when the URLconf loads."""
    import importlib

    from django.urls import clear_url_caches

    importlib.reload(importlib.import_module(django_settings.ROOT_URLCONF))
    clear_url_caches()


def test_commands_reindex_all_and_status(host, make_project):
    project, _ = make_project(3)
    other, _ = make_project(2)
    Embedding.objects.all().delete()  # as if similarity were installed after the uploads
    out = StringIO()
    call_command("similarity_reindex", "--all", "--sync", stdout=out)
    assert Embedding.objects.filter(status="done").count() == 5
    for project_, count in ((project, 3), (other, 2)):
        assert f"Project {host.scope(project_)} ({project_}): {count} new" in out.getvalue()
    out = StringIO()
    call_command("similarity_status", "--refresh", stdout=out)
    lines = out.getvalue().splitlines()
    for scope, total in ((host.scope(project), 3), (host.scope(other), 2)):
        line = next(line for line in lines if line.startswith(scope + " "))
        assert "ready" in line and f"{total}/{total}" in line
    # one project by its own key, whatever the key type
    Embedding.objects.filter(project_id=host.scope(other)).delete()
    out = StringIO()
    call_command("similarity_reindex", "--project", host.scope(other), "--sync", stdout=out)
    assert f"Project {host.scope(other)} ({other}): 2 new" in out.getvalue()
    assert Embedding.objects.filter(project_id=host.scope(other), status="done").count() == 2


# --- the host changes its assets -----------------------------------------------------------


def test_moving_an_asset_to_another_project(host, make_project, django_capture_on_commit_callbacks):
    project, assets = make_project(5)
    other, others = make_project(3)
    moved = assets[2]
    assert moved.pk in ranked_ids(assets[0]) and moved.pk not in ranked_ids(others[0])
    with django_capture_on_commit_callbacks(execute=True):
        setattr(moved, host.fk, host.placement(other))
        moved.save()
    scope, other_scope = host.scope(project), host.scope(other)
    assert set(Embedding.objects.filter(asset_id=moved.pk).values_list("project_id", flat=True)) \
        == {other_scope}
    assert moved.pk not in ranked_ids(assets[0]) and moved.pk not in ranked_ids(assets[0], "least")
    tasks.embed_project(other_scope)  # nothing to do if the vector was reused
    result = find_similar(others[0])
    assert_ranked_like_numpy(result, other_scope, others[0], "most")
    assert moved.pk in [match.asset.pk for match in result.matches]
    assert set(ranked_ids(moved)) == {asset.pk for asset in others}
    old, new = readiness.get_readiness(scope), readiness.get_readiness(other_scope)
    assert (old.total, old.embedded, old.state) == (4, 4, "ready")
    assert (new.total, new.embedded, new.state) == (4, 4, "ready")


@pytest.mark.parametrize("how", ["assign-and-save", "fieldfile-save"])
def test_replacing_the_file_re_embeds_and_never_serves_the_old_vector(
        host, make_project, django_capture_on_commit_callbacks, how):
    project, assets = make_project(4)
    scope = host.scope(project)
    changed = assets[1]
    old_vector = as_floats(Embedding.objects.get(asset_id=changed.pk).vector)
    assert changed.pk in ranked_ids(assets[0])  # this process's cache is warm
    replacement = ContentFile(varied_png(9001), name="replacement.png")
    with django_capture_on_commit_callbacks(execute=True):
        if how == "assign-and-save":  # a form or a serializer does this
            setattr(changed, host.image_field, replacement)
            changed.save()
        else:
            getattr(changed, host.image_field).save(replacement.name, replacement, save=True)
    changed.refresh_from_db()
    assert "replacement" in getattr(changed, host.image_field).name  # the new file is stored
    row = Embedding.objects.get(asset_id=changed.pk)
    assert (row.status, row.vector, row.project_id) == ("pending", None, scope)
    assert changed.pk not in ranked_ids(assets[0]) + ranked_ids(assets[0], "least")
    with pytest.raises(NotEmbedded):
        find_similar(changed)
    assert readiness.get_readiness(scope).pending == 1
    tasks.embed_project(scope)
    row = Embedding.objects.get(asset_id=changed.pk)
    assert row.status == "done"
    assert not np.allclose(as_floats(row.vector), old_vector, atol=1e-3)
    assert_ranked_like_numpy(find_similar(changed), scope, changed, "most")


def test_deleting_an_asset(host, make_project, django_capture_on_commit_callbacks):
    project, assets = make_project(4)
    gone_pk = assets[3].pk
    assert gone_pk in ranked_ids(assets[0])  # this process's cache is warm
    with django_capture_on_commit_callbacks(execute=True):
        assets[3].delete()
    assert not Embedding.objects.filter(asset_id=gone_pk).exists()
    assert gone_pk not in ranked_ids(assets[0]) + ranked_ids(assets[0], "least")
    assert len(ranked_ids(assets[0])) == 2
    state = readiness.get_readiness(host.scope(project))
    assert (state.total, state.embedded) == (3, 3)


def test_deleting_a_project_cascades_to_our_rows(host, make_project,
                                               django_capture_on_commit_callbacks):
    project, assets = make_project(3)
    other, others = make_project(2)
    scope = host.scope(project)
    with django_capture_on_commit_callbacks(execute=True):
        project.delete()  # the host's cascade deletes the assets (and their signals fire)
    assert not Embedding.objects.filter(asset_id__in=[a.pk for a in assets]).exists()
    assert not Embedding.objects.filter(project_id=scope).exists()
    assert readiness.get_readiness(scope).total == 0
    assert len(ranked_ids(others[0])) == 1
    assert readiness.get_readiness(host.scope(other)).state == "ready"


def test_bulk_update_is_repaired_by_the_sweep(host, make_project, django_capture_on_commit_callbacks):
    project, assets = make_project(5)
    other, others = make_project(2)
    moved = assets[:2]
    assert {asset.pk for asset in moved} <= set(ranked_ids(assets[2]))  # a warm cache
    host.asset_model.objects.filter(pk__in=[asset.pk for asset in moved]).update(
        **{host.fk: host.placement(other)})  # fires no signal
    # Before any repair, search re-reads the host's table: moved assets never come back
    # from their old project, and the count stays exact.
    for order in ("most", "least"):
        stale = ranked_ids(assets[2], order)
        assert not {asset.pk for asset in moved} & set(stale) and len(stale) == 2
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    scope, other_scope = host.scope(project), host.scope(other)
    assert set(Embedding.objects.filter(asset_id__in=[a.pk for a in moved])
               .values_list("project_id", flat=True)) == {other_scope}
    tasks.embed_project(other_scope)
    remaining = ranked_ids(assets[2])
    assert not {asset.pk for asset in moved} & set(remaining) and len(remaining) == 2
    assert {asset.pk for asset in moved} <= set(ranked_ids(others[0]))
    assert readiness.get_readiness(scope).total == 3
    assert readiness.get_readiness(other_scope).total == 4


@pytest.mark.parametrize("broken", ["similarity.host.scopes.project_id_of",
                                    "similarity.embedding.readiness.refresh"])
def test_a_failing_handler_never_breaks_the_hosts_save(
        host, make_project, add_asset, monkeypatch, caplog, broken,
        django_capture_on_commit_callbacks):
    project, assets = make_project(3)
    other, _ = make_project(1)

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("similarity bug")

    monkeypatch.setattr(broken, explode)
    if broken.endswith("project_id_of"):
        monkeypatch.setattr("similarity.host.scopes.project_ids_for", explode)
    with caplog.at_level(logging.ERROR):
        late = add_asset(project, f"{SECRET} late")  # must not raise
        with django_capture_on_commit_callbacks(execute=True):
            setattr(assets[0], host.fk, host.placement(other))
            assets[0].save()  # must not raise
    assert host.asset_model.objects.filter(pk=late.pk).exists()
    assert "similarity bug" in caplog.text
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    assert Embedding.objects.get(asset_id=late.pk).project_id == host.scope(project)
    assert Embedding.objects.get(asset_id=assets[0].pk).project_id == host.scope(other)
    tasks.embed_project(host.scope(project))
    assert set(ranked_ids(assets[1])) == {assets[2].pk, late.pk}
    state = readiness.get_readiness(host.scope(project))
    assert (state.total, state.embedded, state.state) == (3, 3, "ready")


@pytest.mark.django_db(transaction=True)
def test_a_second_process_moving_or_deleting_is_seen_by_a_warm_cache(host, make_project):
    project, assets = make_project(6)
    other, _ = make_project(1)
    scope = host.scope(project)
    first = find_similar(assets[0])
    assert_ranked_like_numpy(first, scope, assets[0], "most")
    assert first.exact  # served from this process's exact cache, now warm
    moved, deleted = assets[1], assets[2]
    second_process("move", moved.pk, host.fk, host.placement(other).pk)
    second_process("delete", deleted.pk)
    for order in ("most", "least"):
        again = find_similar(assets[0], order=order)
        ids = [match.asset.pk for match in again.matches]
        assert moved.pk not in ids and deleted.pk not in ids
        assert len(ids) == 3
        assert_ranked_like_numpy(again, scope, assets[0], order)


def second_process(*args: Any) -> None:
    """Run tests/hosts/second_process.py on this test's database and media."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": django_settings.SETTINGS_MODULE,
        "SIMILARITY_HOST_DB_NAME": connection.settings_dict["NAME"],
        "SIMILARITY_HOST_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.hosts.second_process", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- what anonymous and outside users get -------------------------------------------------


def _render(source: str, user: Any, **context: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load similarity_tags %}" + source).render(RequestContext(request, context))


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_template_tags_show_outsiders_nothing_of_the_project(
        host, make_project, insider, outsider, who):
    project, assets = make_project(3)
    scope = host.scope(project)
    user = AnonymousUser() if who == "anonymous" else outsider
    tags = {
        "readiness": "{% similarity_readiness scope %}",
        "menu": "{% similarity_menu_items asset %}",
        "notifications": "{% similarity_notifications_menu %}",
    }
    context = {"scope": scope, "asset": assets[0]}
    results_url = reverse("similarity:results", args=[assets[0].pk])
    readiness_url = reverse("similarity:readiness", args=[scope])
    shown = {name: _render(source, insider, **context) for name, source in tags.items()}
    # hosts pass their own key (int, UUID, slug) straight from the template
    raw = _render("{% similarity_readiness project.pk %}", insider, project=project)
    assert 'data-state="ready"' in raw and readiness_url in raw
    assert 'data-state="ready"' in shown["readiness"] and readiness_url in shown["readiness"]
    assert results_url in shown["menu"]
    assert "Similarity search is ready" in shown["notifications"]
    for name, source in tags.items():
        html = _render(source, user, **context)
        for secret in (SECRET, 'data-state="ready"', "Similarity search ready", "3/3",
                       readiness_url, results_url, "Similarity search is ready",
                       "images added ·"):
            assert secret not in html, f"{name} shows {secret!r} to {who}: {html[:300]}"


def similarity_urls(asset: Any, scope: str, notification_pk: int, others: list[Any],
                    query_id: Any = None, saved_pk: int | None = None) -> list[str]:
    """Every URL of similarity.urls and similarity.api_urls, filled in for one project
    (``query_id`` and ``saved_pk``: an insider's outside-image query and saved search)."""
    import uuid

    import similarity.api_urls
    import similarity.urls

    values = {"asset_id": asset.pk, "project_id": scope, "pk": notification_pk,
              "query_id": query_id or uuid.uuid4(), "name": "export-csv",
              "result_id": others[0].pk if others else asset.pk}  # match maps
    urls = []
    for module, namespace, prefix in ((similarity.urls, "similarity:", PAGES_PREFIX),
                                      (similarity.api_urls, "", API_PREFIX)):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern) and pattern.name, pattern
            names = (list(pattern.pattern.converters) if hasattr(pattern.pattern, "converters")
                     else [])
            names = names or list(pattern.pattern.regex.groupindex)
            own = dict(values)
            if "saved" in pattern.name and saved_pk is not None:
                own["pk"] = saved_pk
            url = reverse(namespace + pattern.name, kwargs={name: own[name] for name in names})
            assert url.startswith(prefix), url
            if pattern.name == "selection":
                url += "?ids=" + ",".join(str(item.pk) for item in [asset, *others])
            urls.append(url)
    return urls


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_url_walk_shows_outsiders_nothing(host, make_project, insider, outsider, who):
    project, assets = make_project(3)
    scope = host.scope(project)
    notification = Notification.objects.filter(project_id=scope).first()
    # An insider's outside-image query and saved search (named with the secret): their
    # pages and APIs must show outsiders nothing either.
    row = Embedding.objects.get(asset_id=assets[0].pk)
    query = QueryImage.objects.create(project_id=scope, user=insider, name=f"{SECRET}.jpg",
                                      model_key=row.model_key, vector=row.vector)
    saved = SavedSearch.objects.create(project_id=scope, owner=insider, name=SECRET,
                                       positive_ids=[str(assets[0].pk)], vector=row.vector,
                                       model_key=row.model_key, query_image=query)
    urls = similarity_urls(assets[0], scope, notification.pk, assets[1:], query.pk, saved.pk)
    assert len(urls) >= 40
    before = list(ProjectReadiness.objects.filter(project_id=scope).values())
    rows_before = list(Embedding.objects.order_by("pk").values_list("pk", "status", "project_id"))
    client = APIClient()
    if who == "outsider":
        client.force_login(outsider)
    secrets = [SECRET, "Similarity search is ready", "images added ·",
               *(getattr(asset, host.image_field).url for asset in assets)]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            body = response.content.decode(errors="replace")
            for secret in secrets:
                assert secret not in body, f"{method.upper()} {url} shows {secret!r} to {who}"
            status = response.status_code
            is_api = url.startswith(API_PREFIX)
            if who == "anonymous" and not is_api:
                assert status == 302 and response["Location"].startswith(
                    django_settings.LOGIN_URL), (method, url, status)
            elif who == "anonymous":
                assert status in (401, 403), (method, url, status)
            elif "notification" in url and f"/{notification.pk}/" not in url:
                # the outsider's own (empty) notifications, or a redirect back after "read"
                assert status in (200, 302, 404, 405), (method, url, status)
            elif url in (f"{PAGES_PREFIX}saved/", f"{PAGES_PREFIX}saved/new/",
                         f"{API_PREFIX}saved-searches/"):
                # the outsider's own (empty) list; an empty form or body is refused
                assert status in (200, 400, 404, 405), (method, url, status)
            else:
                assert status in (403, 404, 405), (method, url, status)
    assert list(ProjectReadiness.objects.filter(project_id=scope).values()) == before
    assert list(Embedding.objects.order_by("pk").values_list("pk", "status", "project_id")) \
        == rows_before
