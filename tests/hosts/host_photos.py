"""The photo host: its own Photo model, albums as projects, its own base template."""

from __future__ import annotations

import pytest
from django.urls import reverse

from similarity import readiness, tasks
from similarity.models import Embedding, Notification
from similarity.search import find_similar
from tests.hosts.photos.models import Album

pytestmark = pytest.mark.django_db


@pytest.fixture
def album(owner, add_photo):
    album = Album.objects.create(title="Holiday", owner=owner)
    for i in range(4):
        add_photo(album, f"p{i}", kind=i % 2, seed=i)
    return album


def test_migrate_created_our_tables_pointing_at_the_hosts_model():
    field = Embedding._meta.get_field("asset")
    assert field.related_model._meta.label == "photos.Photo"


def test_upload_embed_readiness_notifications_and_search(album, add_photo):
    assert readiness.get_readiness(album.pk).state == "computing"
    tasks.embed_project(album.pk)
    state = readiness.get_readiness(album.pk)
    assert (state.state, state.embedded) == ("ready", 4)
    assert list(Notification.objects.filter(project_id=album.pk).values_list("message", flat=True)
                .order_by("id")) == ["Computing embeddings for 4 images", "Similarity search is ready"]
    photos = list(album.photos.order_by("pk"))
    most = find_similar(photos[0])
    assert [m.asset for m in most.matches][:2] == [photos[0], photos[2]]  # same family next
    least = find_similar(photos[0], order="least")
    assert least.matches[-1].asset == photos[0]


def test_albums_are_isolated(album, owner, add_photo):
    other = Album.objects.create(title="Work", owner=owner)
    twin = add_photo(other, "twin", kind=0, seed=0)  # identical to p0, other album
    tasks.embed_project(album.pk)
    tasks.embed_project(other.pk)
    result = find_similar(album.photos.get(caption="p0"))
    assert twin not in [m.asset for m in result.matches]


def test_api_under_the_hosts_prefix_and_policy(album, owner, stranger, api_for):
    tasks.embed_project(album.pk)
    photo = album.photos.get(caption="p1")
    body = api_for(owner).get(f"/api/v2/assets/{photo.pk}/similar/?order=least&limit=2").json()
    assert body["order"] == "least" and len(body["results"]) == 2
    assert body["query"] == {"id": photo.pk, "label": "p1", "url": f"/photos/{photo.pk}/",
                             "thumbnail_url": photo.image.url}
    assert api_for(owner).get(f"/api/v2/projects/{album.pk}/similarity/").json()["ready"]
    # The host's DRF default is AllowAny; ours still answer 404/401 to others.
    assert api_for(stranger).get(f"/api/v2/assets/{photo.pk}/similar/").status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v2/assets/{photo.pk}/similar/").status_code in (401, 403)


def test_pages_use_the_hosts_base_template_and_includes(album, owner, client):
    tasks.embed_project(album.pk)
    client.force_login(owner)
    page = client.get(reverse("album", args=[album.pk])).content.decode()
    assert 'class="photo-host"' in page
    assert 'data-state="ready"' in page and "Similarity search ready" in page
    photo = album.photos.first()
    assert f"/tools/similar/assets/{photo.pk}/similar/" in page  # the menu include
    results = client.get(reverse("similarity:results", args=[photo.pk])).content.decode()
    assert 'class="photo-host"' in results and "Most similar to" in results


def test_admin_mixin_on_the_hosts_admin(album, owner, client):
    tasks.embed_project(album.pk)
    owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    page = client.get(reverse("admin:photos_photo_changelist")).content.decode()
    assert "Embedded" in page and "Find similar images" in page


def test_existing_photos_are_embedded_by_reindex_all(album, capsys):
    from django.core.management import call_command

    Embedding.objects.all().delete()  # as if the app were installed after the photos
    call_command("similarity_reindex", "--all", "--sync")
    assert Embedding.objects.filter(status="done").count() == 4
    assert "4 new" in capsys.readouterr().out
