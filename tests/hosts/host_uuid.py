"""UUID keys on scans and workspaces; the host's membership policy, which also hides
restricted scans from members who are not superusers (per-asset narrowing)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from similarity.search import find_similar
from tests.hosts.archive.models import Scan
from tests.hosts.profiles import ScanHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)
from tests.hosts.scenario import (
    API_PREFIX,
    assert_ranked_like_numpy,
    reference_ranking,
    use_search_path,
)


@pytest.fixture
def host():
    return ScanHost()


@pytest.mark.parametrize("path", ["cache", "sql", "hnsw"])
def test_restricted_scans_never_reach_members_and_counts_stay_exact(
        host, make_project, insider, client, api_for, settings, path):
    project, assets = make_project(8)
    scope = host.scope(project)
    hidden = {asset.pk for asset in assets[1:4]}
    Scan.objects.filter(pk__in=hidden).update(restricted=True)
    root = get_user_model().objects.create_superuser("root", password="pw")
    project.members.add(root)
    query = assets[0]
    use_search_path(settings, path, scope)
    for order in ("most", "least"):
        everything = reference_ranking(scope, query.pk, order)
        visible = [(pk, cosine) for pk, cosine in everything if pk not in hidden]
        assert_ranked_like_numpy(find_similar(query, order=order, user=insider), scope, query,
                                 order, expected=visible)
        assert_ranked_like_numpy(find_similar(query, order=order, user=root), scope, query,
                                 order, expected=everything)
    body = api_for(insider).get(f"{API_PREFIX}assets/{query.pk}/similar/").json()
    shown = {str(item["asset"]["id"]) for item in body["results"]}
    assert len(shown) == 4 and not {str(pk) for pk in hidden} & shown
    restricted = assets[1]
    assert api_for(insider).get(f"{API_PREFIX}assets/{restricted.pk}/similar/").status_code == 404
    client.force_login(insider)
    assert client.get(reverse("similarity:results", args=[restricted.pk])).status_code == 404
    assert client.get(reverse("similarity:thumbnail", args=[restricted.pk])).status_code == 404
    client.force_login(root)
    assert client.get(reverse("similarity:results", args=[restricted.pk])).status_code == 200
