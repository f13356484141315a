"""Slug-like CharField keys on pins and boards; a FileField; the host's owner policy."""

import pytest

from tests.hosts.profiles import PinHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PinHost()


def test_a_board_whose_key_is_site_is_an_ordinary_project(host, insider, add_asset, api_for):
    """A slug key may be any word, "site" included: it must not be taken for the
    site-wide scope (no project)."""
    from similarity import tasks
    from similarity.embedding import readiness
    from similarity.search import find_similar
    from tests.hosts.archive.models import Board
    from tests.hosts.scenario import API_PREFIX, assert_ranked_like_numpy

    board = Board.objects.create(slug="site", title="Site photos", owner=insider)
    pins = [add_asset(board, f"site pin {i}") for i in range(3)]
    scope = host.scope(board)
    tasks.embed_project(scope)
    state = readiness.get_readiness(scope)
    assert (state.state, state.embedded) == ("ready", 3)
    assert_ranked_like_numpy(find_similar(pins[0]), scope, pins[0], "most")
    body = api_for(insider).get(f"{API_PREFIX}projects/{scope}/similarity/").json()
    assert (body.get("project"), body.get("embedded")) == ("site", 3), body
    assert api_for(insider).get(f"{API_PREFIX}assets/{pins[0].pk}/similar/").status_code == 200


def test_keys_with_slashes_commas_and_percent_signs_work_everywhere(
        host, insider, api_for, client, django_capture_on_commit_callbacks):
    """A board keyed ``team/alpha`` and pins keyed ``pin,1`` or ``pin/2``: routes reverse
    and resolve them exactly (``<str:>`` could not reverse "/": the bulk bar and the
    redirect after saving a search answered 500), and a JSON list item is one id even with
    a comma in it."""
    import json
    from urllib.parse import quote

    from django.core.files.base import ContentFile
    from django.urls import reverse

    from similarity import tasks
    from similarity.actions import parse_ids
    from tests.hosts.archive.models import Board, Pin
    from tests.hosts.conftest import varied_png
    from tests.hosts.scenario import API_PREFIX

    board = Board.objects.create(slug="team/alpha", title="Team", owner=insider)
    pins = []
    for i, code in enumerate(["pin,1", "pin/2", "pin%3", "pin 4", "pin5"]):
        with django_capture_on_commit_callbacks(execute=True):
            pin = Pin(code=code, board=board, title=f"p{i}")
            pin.artwork.save(f"p{i}.png", ContentFile(varied_png(300 + i)), save=True)
        pins.append(pin)
    scope = host.scope(board)
    assert scope == "team/alpha"
    tasks.embed_project(scope)
    client.force_login(insider)
    for pin in pins[:4]:
        url = reverse("similarity:results", args=[pin.pk])
        page = client.get(url)
        assert page.status_code == 200, (pin.pk, url)
        assert page.context["asset"].pk == pin.pk  # resolved to the same key
        assert "data-select-toolbar" in page.content.decode()  # the bulk bar, reversed
        # with the board's key (NoReverseMatch, a 500, before)
    readiness_url = reverse("similarity:readiness", args=[scope])
    assert client.get(readiness_url).json()["project"] == "team/alpha"
    saved = client.post(reverse("similarity:saved-search-create"),
                        {"name": "slashes", "positive_id": pins[0].pk, "project_id": scope})
    assert saved.status_code in (302, 303), saved.content[:300]
    assert client.get(saved.url).status_code == 200
    api = api_for(insider)
    # in a path the key is percent-encoded twice (the server decodes one layer itself)
    segment = quote(quote(scope, safe=""), safe="")
    assert reverse("similarity-readiness", args=[scope]) == f"{API_PREFIX}projects/{segment}/similarity/"
    body = api.get(f"{API_PREFIX}projects/{segment}/similarity/").json()
    assert body["project"] == "team/alpha"
    answer = api.post(reverse("similarity-action", args=[scope, "export-json"]),
                      {"ids": ["pin,1", "pin/2"]}, format="json")
    assert answer.status_code == 200, answer.content[:300]
    exported = json.loads(b"".join(getattr(answer, "streaming_content", [answer.content])))
    assert sorted(str(row["id"]) for row in exported["items"]) == ["pin,1", "pin/2"]
    assert parse_ids(["pin,1", "pin/2"]) == ["pin,1", "pin/2"]
    assert parse_ids("a,b") == ["a", "b"]
