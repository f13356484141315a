"""8-byte keys: the photo host, its own Photo model, albums as projects, its own base
template and an admin that uses SimilarityAssetAdminMixin by hand.

The shared scenario runs here too; the tests below check what only this host has.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from similarity import tasks
from similarity.host import scopes
from tests.hosts.photos.models import Album
from tests.hosts.profiles import PhotosHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PhotosHost()


@pytest.fixture
def album(owner, add_photo):
    album = Album.objects.create(title="Holiday", owner=owner)
    for i in range(4):
        add_photo(album, f"p{i}", kind=i % 2, seed=i)
    tasks.embed_project(str(album.pk))
    return album


def test_pages_use_the_hosts_base_template_and_includes(album, owner, client):
    client.force_login(owner)
    page = client.get(reverse("album", args=[album.pk])).content.decode()
    assert 'class="photo-host"' in page
    assert 'data-state="ready"' in page and "Similarity search ready" in page
    photo = album.photos.first()
    assert f"/tools/similar/assets/{photo.pk}/similar/" in page  # the menu include
    results = client.get(reverse("similarity:results", args=[photo.pk])).content.decode()
    assert 'class="photo-host"' in results and "Most similar to" in results


def test_same_family_ranks_first(album):
    from similarity.search import find_similar

    photos = list(album.photos.order_by("pk"))
    assert find_similar(photos[0]).matches[0].asset == photos[2]  # stripes next to stripes


def test_admin_mixin_added_by_hand(album, owner, client):
    owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    page = client.get(reverse("admin:photos_photo_changelist")).content.decode()
    assert page.count('class="column-embedding_status"') == 1
    assert "Embedded" in page and "Find similar images" in page


def test_a_photo_taken_out_of_its_album_leaves_the_album(album, django_capture_on_commit_callbacks):
    from similarity.models import Embedding
    from similarity.search import find_similar

    photos = list(album.photos.order_by("pk"))
    loose = photos[1]
    with django_capture_on_commit_callbacks(execute=True):
        loose.album = None
        loose.save()
    assert Embedding.objects.get(asset_id=loose.pk).project_id == scopes.NO_PROJECT
    assert loose not in [match.asset for match in find_similar(photos[0]).matches]
    assert len(find_similar(photos[0]).matches) == 2
