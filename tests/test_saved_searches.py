"""Saved searches that watch new uploads (issue 12, item 4): save, match each batch of new
images in NumPy, one notification per saved search and batch, owner-only pages and API."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from datasets.models import ProjectMembership
from similarity import tasks, watch
from similarity.models import Embedding, Notification, SavedSearch, SavedSearchMatch
from similarity.watch import matching
from tests import factories
from tests.conftest import wait_for


def as_array(stored) -> np.ndarray:
    return np.asarray(getattr(stored, "to_list", lambda: stored)(), dtype=np.float64)


def stored_unit(asset) -> np.ndarray:
    stored = Embedding.objects.get(asset=asset).vector
    vector = np.asarray(getattr(stored, "to_list", lambda: stored)(), dtype=np.float64)
    return vector / np.linalg.norm(vector)


def make_images(dataset, count: int, start: int = 0) -> list:
    return [factories.asset(dataset, f"img{i}.png", factories.pattern_image(i % 3, seed=i))
            for i in range(start, start + count)]


def ids_on_page(content: bytes) -> list[str]:
    return re.findall(r'<li class="tile[^"]*" data-asset-id="([^"]+)"', content.decode())


@pytest.fixture
def base(db, dataset_a):
    images = make_images(dataset_a, 6)
    tasks.embed_project(dataset_a.project_id)
    return images


def save(user, dataset, positives, **extra) -> SavedSearch:
    return watch.save_search(user, str(dataset.project_id), name=extra.pop("name", "cracked"),
                             positive=[str(a.pk) for a in positives], **extra)


# --- saving ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_save_from_results_page_recomputes_the_vector(web, alice, dataset_a, base):
    page = web.get(reverse("similarity:results", args=[base[0].pk]))
    assert b'data-testid="save-search"' in page.content
    response = web.post(reverse("similarity:saved-search-create"), {
        "project_id": str(dataset_a.project_id), "name": "  cracked   casing ",
        "positive": f"{base[0].pk},{base[1].pk}", "negative": str(base[2].pk),
        "order": "most", "threshold": "0.75",
    })
    assert response.status_code == 302
    search = SavedSearch.objects.get(owner=alice)
    assert search.name == "cracked casing"
    assert search.positive_ids == [str(base[0].pk), str(base[1].pk)]
    assert search.negative_ids == [str(base[2].pk)] and search.threshold == 0.75
    expected = (stored_unit(base[0]) + stored_unit(base[1])) / 2 - 0.5 * stored_unit(base[2])
    expected /= np.linalg.norm(expected)
    kept = as_array(search.vector)
    assert np.allclose(kept, expected, atol=2e-3)  # halfvec-rounded
    assert search.model_key == Embedding.objects.get(asset=base[0]).model_key


@pytest.mark.django_db
def test_same_name_twice_is_a_clear_error(web, alice, dataset_a, base):
    save(alice, dataset_a, [base[0]], name="cracked casing")
    response = web.post(reverse("similarity:saved-search-create"), {
        "project_id": str(dataset_a.project_id), "name": "cracked casing",
        "positive": str(base[1].pk)}, follow=True)
    assert "already have a saved search named “cracked casing”" in response.content.decode()
    assert SavedSearch.objects.count() == 1
    with pytest.raises(watch.SaveError, match="already have"):
        save(alice, dataset_a, [base[1]], name="cracked casing")


@pytest.mark.django_db
def test_outsider_cannot_save_a_search_on_a_project_they_cannot_see(client, bob, dataset_a,
                                                                    dataset_b, base):
    client.force_login(bob)
    response = client.post(reverse("similarity:saved-search-create"), {
        "project_id": str(dataset_a.project_id), "name": "x", "positive": str(base[0].pk)})
    assert response.status_code == 404
    # bob's own project, but alice's image: still a 404
    response = client.post(reverse("similarity:saved-search-create"), {
        "project_id": str(dataset_b.project_id), "name": "x", "positive": str(base[0].pk)})
    assert response.status_code == 404
    api = APIClient()
    api.force_authenticate(bob)
    response = api.post("/api/saved-searches/", {
        "project_id": str(dataset_a.project_id), "name": "x", "positive": [str(base[0].pk)]},
        format="json")
    assert response.status_code == 404
    assert not SavedSearch.objects.exists()


# --- watching -------------------------------------------------------------------------


@pytest.mark.django_db
def test_matches_are_exactly_the_new_images_above_the_threshold(alice, dataset_a, base):
    search = save(alice, dataset_a, [base[0]], threshold=None)
    search.muted = True  # embed the new images first, to pick a threshold that splits them
    search.save()
    new = make_images(dataset_a, 8, start=10)
    tasks.embed_project(dataset_a.project_id)
    assert not SavedSearchMatch.objects.exists()  # muted: nothing

    query = as_array(search.vector)
    query /= np.linalg.norm(query)
    similarity = {str(a.pk): float(stored_unit(a) @ query) for a in new}
    threshold = float(np.median(list(similarity.values())))
    expected = {pk for pk, s in similarity.items() if s >= threshold}
    assert 0 < len(expected) < len(new)
    SavedSearch.objects.filter(pk=search.pk).update(muted=False, threshold=threshold)

    rows = list(Embedding.objects.filter(asset__in=new).values_list("pk", flat=True))
    own = Embedding.objects.get(asset=base[0]).pk  # its own example never matches
    assert watch.check_new(str(dataset_a.project_id), [*rows, own]) == 1
    got = dict(SavedSearchMatch.objects.values_list("asset_id", "similarity"))
    assert set(got) == expected
    for pk, value in got.items():
        assert value == pytest.approx(similarity[pk], abs=2e-3)
    note = Notification.objects.get(key__startswith="similarity-watch:")
    assert note.recipient == alice
    assert note.message == f"{len(expected)} new images look like “cracked”"
    # the same batch checked again (a task delivered twice): no second notification
    assert watch.check_new(str(dataset_a.project_id), rows) == 0
    assert Notification.objects.filter(key__startswith="similarity-watch:").count() == 1


@pytest.mark.django_db
def test_least_order_and_default_thresholds(alice, dataset_a, base, settings):
    """Without a threshold: most notifies at >= WATCH_THRESHOLD, least at <=
    WATCH_LEAST_THRESHOLD (new images that look unlike the query)."""
    most = save(alice, dataset_a, [base[0]], name="like")
    least = save(alice, dataset_a, [base[0]], name="unlike", order="least")
    SavedSearch.objects.update(muted=True)
    new = make_images(dataset_a, 4, start=20)
    tasks.embed_project(dataset_a.project_id)
    query = as_array(most.vector)
    query /= np.linalg.norm(query)
    scores = {str(a.pk): float(stored_unit(a) @ query) for a in new}
    ordered = sorted(scores.values())
    high, low = (ordered[1] + ordered[2]) / 2, (ordered[0] + ordered[1]) / 2
    settings.SIMILARITY = {**settings.SIMILARITY, "WATCH_THRESHOLD": high,
                           "WATCH_LEAST_THRESHOLD": low}
    assert watch.threshold_of(most) == pytest.approx(high)
    assert watch.threshold_of(least) == pytest.approx(low)
    SavedSearch.objects.update(muted=False)
    watch.check_new(str(dataset_a.project_id),
                    Embedding.objects.filter(asset__in=new).values_list("pk", flat=True))

    def matched(search):
        return set(SavedSearchMatch.objects.filter(saved_search=search)
                   .values_list("asset_id", flat=True))

    assert matched(most) == {pk for pk, s in scores.items() if s >= high}
    assert matched(least) == {pk for pk, s in scores.items() if s <= low}
    assert len(matched(most)) == 2 and len(matched(least)) == 1
    assert Notification.objects.filter(message="1 new image looks unlike “unlike”").count() == 1
    assert Notification.objects.filter(message="2 new images look like “like”").count() == 1


@pytest.mark.django_db
def test_check_new_never_raises(alice, dataset_a, base, monkeypatch, caplog):
    save(alice, dataset_a, [base[0]], threshold=-1)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(matching, "_record", broken)
    new = make_images(dataset_a, 2, start=30)
    tasks.embed_project(dataset_a.project_id)  # embedding goes on
    assert Embedding.objects.filter(asset__in=new, status="done").count() == 2
    assert "checking new images failed" in caplog.text


@pytest.mark.django_db
def test_model_change_recomputes_from_examples(alice, dataset_a, base):
    search = save(alice, dataset_a, [base[0]])
    SavedSearch.objects.filter(pk=search.pk).update(model_key="old-model", vector=[1.0] * 32)
    search.refresh_from_db()
    assert not watch.needs_resave(search)  # its example is embedded by the serving model
    search.refresh_from_db()
    assert search.model_key == Embedding.objects.get(asset=base[0]).model_key
    assert np.allclose(as_array(search.vector), stored_unit(base[0]), atol=2e-3)
    # an example that is gone: the page says to save the search again
    SavedSearch.objects.filter(pk=search.pk).update(model_key="old-model",
                                                    positive_ids=["999999"])
    search.refresh_from_db()
    assert watch.needs_resave(search)


# --- pages and API: owner only -----------------------------------------------------------


@pytest.fixture
def carol(project_a):
    user = factories.user("carol")
    ProjectMembership.objects.create(project=project_a, user=user, role="viewer")
    return user


@pytest.mark.django_db
def test_owner_renames_mutes_deletes_others_get_404(web, alice, carol, dataset_a, base):
    search = save(alice, dataset_a, [base[0]], name="cracked")
    listing = web.get(reverse("similarity:saved-searches-project", args=[dataset_a.project_id]))
    assert b"cracked" in listing.content and b"Run now" in listing.content
    assert web.get(reverse("similarity:saved-searches")).status_code == 200

    client = Client()
    client.force_login(carol)  # sees the project, but the search is not hers
    for name in ("rename", "mute", "delete"):
        url = reverse(f"similarity:saved-search-{name}", args=[search.pk])
        assert client.post(url, {"name": "mine", "muted": "1"}).status_code == 404
    for name in ("run", "matches"):
        assert client.get(reverse(f"similarity:saved-search-{name}",
                                  args=[search.pk])).status_code == 404
    assert b"cracked" not in client.get(reverse("similarity:saved-searches")).content

    web.post(reverse("similarity:saved-search-rename", args=[search.pk]), {"name": "dented"})
    web.post(reverse("similarity:saved-search-mute", args=[search.pk]), {"muted": "1"})
    search.refresh_from_db()
    assert (search.name, search.muted) == ("dented", True)
    run = web.get(reverse("similarity:saved-search-run", args=[search.pk]))
    assert run.status_code == 302 and run.url.startswith(reverse("similarity:selection"))
    assert f"id={base[0].pk}" in run.url
    web.post(reverse("similarity:saved-search-delete", args=[search.pk]))
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_api_owner_only(api, alice, carol, dataset_a, base):
    created = api.post("/api/saved-searches/", {
        "project_id": str(dataset_a.project_id), "name": "cracked",
        "positive": [str(base[0].pk)], "threshold": 0.5}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["effective_threshold"] == 0.5
    again = api.post("/api/saved-searches/", {
        "project_id": str(dataset_a.project_id), "name": "cracked",
        "positive": [str(base[1].pk)]}, format="json")
    assert again.status_code == 400 and "already have" in again.json()["detail"]
    assert [s["name"] for s in api.get("/api/saved-searches/").json()] == ["cracked"]
    assert api.patch(f"/api/saved-searches/{pk}/", {"name": "dented", "muted": True},
                     format="json").json()["muted"] is True
    other = APIClient()
    other.force_authenticate(carol)
    assert other.get("/api/saved-searches/").json() == []
    for method in ("get", "patch", "delete"):
        assert getattr(other, method)(f"/api/saved-searches/{pk}/").status_code == 404
    assert other.get(f"/api/saved-searches/{pk}/matches/").status_code == 404
    SavedSearchMatch.objects.create(saved_search_id=pk, asset_id=str(base[3].pk),
                                    similarity=0.9, batch="00000000-0000-0000-0000-000000000001")
    matches = api.get(f"/api/saved-searches/{pk}/matches/").json()
    assert matches["count"] == 1 and matches["results"][0]["asset"]["id"] == base[3].pk
    assert api.delete(f"/api/saved-searches/{pk}/").status_code == 204


@pytest.mark.django_db
def test_matches_page_respects_access_at_read_time(web, alice, dataset_a, base, project_a):
    search = save(alice, dataset_a, [base[0]])
    batch = "00000000-0000-0000-0000-0000000000aa"
    for asset in base[1:3]:
        SavedSearchMatch.objects.create(saved_search=search, asset_id=str(asset.pk),
                                        similarity=0.9, batch=batch)
    url = reverse("similarity:saved-search-matches", args=[search.pk])
    assert sorted(ids_on_page(web.get(url, {"batch": batch}).content)) == sorted(
        str(a.pk) for a in base[1:3])
    base[1].delete()  # gone: not shown
    assert ids_on_page(web.get(url).content) == [str(base[2].pk)]
    ProjectMembership.objects.filter(project=project_a, user=alice).delete()
    assert web.get(url).status_code == 404  # lost the project: the search is not shown


# --- the real worker ----------------------------------------------------------------------


@pytest.mark.integration
def test_saved_search_notified_through_the_real_worker(worker, alice, carol, dataset_a):
    web = Client()
    web.force_login(alice)
    project_id = str(dataset_a.project_id)
    with transaction.atomic():
        base = make_images(dataset_a, 3)
    wait_for(lambda: Embedding.objects.filter(asset__in=base, status="done").count() == 3,
             timeout=120, message="the worker to embed the first uploads")
    # saved from the results page's form, like a user would
    response = web.post(reverse("similarity:saved-search-create"), {
        "project_id": project_id, "name": "cracked casing", "positive": str(base[0].pk),
        "threshold": "-1"})
    assert response.status_code == 302
    watching = SavedSearch.objects.get(name="cracked casing")
    muted = save(alice, dataset_a, [base[1]], name="muted", threshold=-1)
    SavedSearch.objects.filter(pk=muted.pk).update(muted=True)
    strict = save(carol, dataset_a, [base[2]], name="carol's", threshold=1.0)

    with transaction.atomic():  # one upload of three images: one batch (BATCH_SIZE 4)
        new = make_images(dataset_a, 3, start=40)
    note = wait_for(lambda: Notification.objects.filter(recipient=alice).first(),
                    timeout=120, message="the worker to notify the saved search")
    wait_for(lambda: Embedding.objects.filter(asset__in=new, status="done").count() == 3,
             timeout=60, message="the new uploads to be embedded")
    assert note.message == "3 new images look like “cracked casing”"
    assert Notification.objects.filter(key__startswith="similarity-watch:").count() == 1
    assert not SavedSearchMatch.objects.filter(saved_search__in=[muted, strict]).exists()
    assert set(SavedSearchMatch.objects.filter(saved_search=watching)
               .values_list("asset_id", flat=True)) == {str(a.pk) for a in new}
    page = web.get(note.url)
    assert page.status_code == 200
    assert sorted(ids_on_page(page.content)) == sorted(str(a.pk) for a in new)
    # carol may see the project but not alice's notification
    assert not Notification.objects.filter(recipient=carol).exists()


@pytest.mark.django_db
def test_save_an_outside_image_query(web, alice, bob, dataset_a, base):
    from similarity.models import QueryImage

    key = Embedding.objects.get(asset=base[0]).model_key
    scope = str(dataset_a.project_id)
    image = QueryImage.objects.create(project_id=scope, user=alice, name="drop.png",
                                      model_key=key, vector=stored_unit(base[1]).tolist())
    create = reverse("similarity:saved-search-create")
    response = web.post(create, {"project_id": scope, "name": "outside",
                                 "image": str(image.pk), "threshold": "0.5"})
    assert response.status_code == 302
    search = SavedSearch.objects.get(owner=alice)
    assert search.query_image_id == image.pk and search.positive_ids == []
    assert np.allclose(as_array(search.vector), stored_unit(base[1]), atol=2e-3)
    run = web.get(reverse("similarity:saved-search-run", args=[search.pk]))
    assert run.status_code == 302
    assert run.url.startswith(reverse("similarity:image-results", args=[image.pk]))
    # another user's outside image cannot be saved by alice
    theirs = QueryImage.objects.create(project_id=scope, user=bob, name="b.png",
                                       model_key=key, vector=stored_unit(base[2]).tolist())
    assert web.post(create, {"project_id": scope, "name": "theirs",
                             "image": str(theirs.pk)}).status_code == 404
    # the model changed: an outside image cannot be re-embedded, the page says to re-save
    QueryImage.objects.filter(pk=image.pk).update(model_key="old-model")
    SavedSearch.objects.filter(pk=search.pk).update(model_key="old-model")
    listing = web.get(reverse("similarity:saved-searches-project", args=[scope]))
    assert b'data-testid="needs-resave"' in listing.content


@pytest.mark.django_db
def test_the_sweep_forgets_saved_searches_of_a_deleted_project(alice, dataset_a, dataset_b, base):
    kept_images = make_images(dataset_b, 2, start=10)
    tasks.embed_project(dataset_b.project_id)
    doomed = save(alice, dataset_a, base[:1])
    ProjectMembership.objects.create(project=dataset_b.project, user=alice, role="editor")
    kept = save(alice, dataset_b, kept_images[:1], name="kept")
    dataset_a.project.delete()
    assert SavedSearch.objects.filter(pk=doomed.pk).exists()  # nothing of ours cascades
    assert tasks.sweep()["forgotten_searches"] == 1
    assert not SavedSearch.objects.filter(pk=doomed.pk).exists()
    assert SavedSearch.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db
def test_control_characters_never_reach_the_name(alice, dataset_a, base):
    search = save(alice, dataset_a, [base[0]], name="crack\x00ed\tcasing")
    assert search.name == "cracked casing"
    with pytest.raises(watch.SaveError):
        save(alice, dataset_a, [base[0]], name="\x00\x01")


@pytest.mark.django_db
def test_a_least_similar_watch_lists_the_most_unlike_matches_first(alice, dataset_a, base):
    import uuid

    from similarity.watch import visible_matches

    search = save(alice, dataset_a, base[:1], name="anomalies", order="least")
    batch = uuid.uuid4()
    for asset, similarity in zip(base[1:4], (0.5, 0.1, 0.3), strict=True):
        SavedSearchMatch.objects.create(saved_search=search, asset_id=str(asset.pk),
                                        similarity=similarity, batch=batch)
    assert [m.similarity for m in visible_matches(alice, search)] == [0.1, 0.3, 0.5]
    search.order = SavedSearch.Order.MOST
    assert [m.similarity for m in visible_matches(alice, search)] == [0.5, 0.3, 0.1]


@pytest.mark.django_db
def test_saving_an_image_query_checks_its_examples_like_a_search(alice, dataset_a, base):
    from similarity.models import QueryImage

    row = Embedding.objects.get(asset=base[5])
    query = QueryImage.objects.create(project_id=str(dataset_a.project_id), user=alice,
                                      name="outside.png", model_key=row.model_key,
                                      vector=row.vector)
    with pytest.raises(watch.SaveError, match="both an example and a counter-example"):
        watch.save_search(alice, str(dataset_a.project_id), name="x", image=str(query.pk),
                          positive=[str(base[0].pk)], negative=[str(base[0].pk)])
    search = watch.save_search(alice, str(dataset_a.project_id), name="y",
                               image=str(query.pk), positive=[str(base[0].pk)])
    expected = stored_unit(base[5]) + stored_unit(base[0])
    assert np.allclose(as_array(search.vector), expected / np.linalg.norm(expected), atol=2e-3)


@pytest.mark.django_db
def test_the_save_form_refuses_more_than_100_examples(web, alice, dataset_a, base):
    many = ",".join(str(n) for n in range(1, 102))
    response = web.post(reverse("similarity:saved-search-create"), {
        "project_id": str(dataset_a.project_id), "name": "many", "positive": many},
        follow=True)
    assert "at most 100 examples" in response.content.decode()
    assert not SavedSearch.objects.exists()
