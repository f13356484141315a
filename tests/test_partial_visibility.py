"""A user who may see only part of a scope (Wagtail collections, or any policy that
narrows assets) reads counts of what they can see, and nothing about the rest: no failed
image's title or error, no library count, no notification about uploads they cannot open."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from datasets.integration import MembershipAccess
from datasets.models import Asset
from similarity.embedding import readiness
from similarity.insight import stage
from similarity.models import Embedding
from tests import factories
from tests.test_insight_engine import add_vectors

pytestmark = pytest.mark.django_db


class HiddenFromViewers(MembershipAccess):
    """Editors see every asset of their projects; viewers never see "hidden*" ones."""

    narrows_assets = True

    def filter_assets(self, user, queryset):
        from datasets import access

        if any(access.can_edit(user, pk) for pk in self.visible_project_ids(user)):
            return queryset
        return queryset.exclude(original_filename__startswith="hidden")


@pytest.fixture
def carol(project_a):
    user = factories.user("carol")
    from datasets.models import ProjectMembership

    ProjectMembership.objects.create(project=project_a, user=user, role="viewer")
    return user


@pytest.fixture
def narrowed(settings):
    settings.SIMILARITY = {**settings.SIMILARITY,
                           "ACCESS_POLICY": "tests.test_partial_visibility.HiddenFromViewers"}


@pytest.fixture
def library(dataset_a, narrowed):
    """Five images carol may see, three she may not; one of each failed."""
    ids = add_vectors(dataset_a, np.eye(8, 16, dtype=np.float32))
    Asset.objects.filter(pk__in=ids[5:]).update(original_filename="hidden-secret.png")
    Embedding.objects.filter(asset_id__in=[ids[0], ids[5]]).update(
        status="failed", vector=None, error="the image is corrupt (row %s)")
    Asset.objects.filter(pk=ids[0]).update(original_filename="visible-broken.png")
    Asset.objects.filter(pk=ids[5]).update(original_filename="hidden-broken-payroll.png")
    state = readiness.refresh(str(dataset_a.project_id), changed=True)
    assert (state.total, state.failed) == (8, 2)
    return ids


def client_for(user) -> tuple[Client, APIClient]:
    web, api = Client(), APIClient()
    web.force_login(user)
    api.force_authenticate(user)
    return web, api


def test_the_failed_images_page_lists_only_images_the_user_may_see(library, carol, alice,
                                                                   project_a):
    url = reverse("similarity:failed", args=[project_a.pk])
    web, _api = client_for(carol)
    html = web.get(url).content.decode()
    assert "visible-broken.png" in html and "hidden-broken-payroll" not in html
    web, _api = client_for(alice)  # an editor sees both
    html = web.get(url).content.decode()
    assert "visible-broken.png" in html and "hidden-broken-payroll" in html


def test_counts_are_of_what_the_user_may_see(library, carol, alice, project_a):
    web, api = client_for(carol)
    body = api.get(f"/api/projects/{project_a.pk}/similarity/").json()
    assert (body["total"], body["embedded"], body["failed"]) == (5, 4, 1)
    icon = web.get(reverse("similarity:readiness", args=[project_a.pk])).json()
    assert (icon["total"], icon["embedded"], icon["failed"]) == (5, 4, 1)
    stage.analyse_project(str(project_a.pk), hash_files=False)
    insight = api.get(f"/api/projects/{project_a.pk}/insight/").json()
    assert (insight["total"], insight["message"]) == (4, "4 images analysed")
    page = web.get(reverse("datasets:project", args=[project_a.pk])).content.decode()
    assert 'data-total="5"' in page and 'data-total="8"' not in page
    _web, api = client_for(alice)
    body = api.get(f"/api/projects/{project_a.pk}/similarity/").json()
    assert (body["total"], body["embedded"], body["failed"]) == (8, 6, 2)
    assert api.get(f"/api/projects/{project_a.pk}/insight/").json()["total"] == 6


def test_library_notifications_reach_only_users_who_see_the_whole_library(
        library, carol, alice, project_a):
    from similarity.embedding.notifications import notify, unread_count

    notify(str(project_a.pk), "Computing embeddings for 7 images", key="t-computing")
    _web, api = client_for(carol)
    messages = [n["message"] for n in api.get("/api/notifications/").json()["results"]]
    assert not any("images" in message for message in messages), messages
    assert unread_count(carol) == 0
    _web, api = client_for(alice)
    messages = [n["message"] for n in api.get("/api/notifications/").json()["results"]]
    assert "Computing embeddings for 7 images" in messages
    assert unread_count(alice) >= 1
