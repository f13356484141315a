"""axe-core in Chromium on every page a person uses: zero serious or critical violations.

Pages: login, datasets list, dataset page (with a "⋯" menu and the notifications menu
open), asset page, results (most and least similar), a selection search with a
counter-example, notifications, saved searches and a saved search's matches, failed
images, duplicates, most unusual, the map, admin index and asset change list, and the
API docs (Swagger UI). Screenshots of each are kept in
var/screenshots/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from similarity import insight_tasks, tasks
from similarity.embedding import readiness
from similarity.models import Embedding, Notification
from tests import factories
from tests.browser_tools import log_in, screenshot, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def site(dataset_a, alice):
    """A project with embedded images, one failed image, a video and notifications."""
    assets = [factories.asset(dataset_a, f"camera_front_{i:04d}_rain.png",
                              factories.pattern_image(i % 3, seed=i)) for i in range(6)]
    factories.asset(dataset_a, "walkthrough.mp4", factories.MP4_HEAD)
    scope = str(dataset_a.project_id)
    tasks.embed_project(scope)
    insight_tasks.run_until_done(scope)  # duplicates, outliers and the map have content
    Embedding.objects.filter(asset=assets[-1]).update(status="failed", vector=None,
                                                      error="cannot identify image file")
    readiness.refresh(scope)
    Notification.objects.create(project_id=scope, level="error",
                                message="1 image could not be embedded.")
    alice.is_staff = alice.is_superuser = True
    alice.save()
    from similarity import watch

    saved = watch.save_search(alice, scope, name="front camera",
                              positive=[str(assets[0].pk)], negative=[str(assets[1].pk)],
                              image=None, order="most", threshold=None)
    return {"assets": assets, "dataset": dataset_a, "scope": scope, "saved": saved}


def check(page, name: str, problems: dict) -> None:
    screenshot(page, f"axe-{name}")
    found = serious_violations(page)
    if found:
        problems[name] = found


def test_every_page_has_no_serious_axe_violation(page, site):
    page.set_viewport_size({"width": 1366, "height": 768})
    problems: dict[str, list] = {}
    page.goto("/accounts/login/")
    check(page, "login", problems)
    log_in(page)
    dataset, first = site["dataset"], site["assets"][0]
    pages = {
        "datasets-list": f"/projects/{dataset.project_id}/",
        "dataset": f"/datasets/{dataset.pk}/",
        "asset": f"/assets/{first.pk}/",
        "results": f"/similarity/assets/{first.pk}/similar/",
        "results-least": f"/similarity/assets/{first.pk}/similar/?order=least",
        "notifications": "/similarity/notifications/",
        "saved-searches": f"/similarity/projects/{site['scope']}/saved/",
        "failed": f"/similarity/projects/{site['scope']}/failed/",
        "selection": f"/similarity/similar/?id={first.pk}&id={site['assets'][2].pk}"
                     f"&not_id={site['assets'][1].pk}",
        "saved-matches": f"/similarity/saved/{site['saved'].pk}/matches/",
        "duplicates": f"/similarity/projects/{site['scope']}/duplicates/",
        "outliers": f"/similarity/projects/{site['scope']}/outliers/",
        "map": f"/similarity/projects/{site['scope']}/map/",
        "admin-index": "/admin/",
        "admin-assets": "/admin/datasets/asset/",
    }
    for name, url in pages.items():
        page.goto(url)
        check(page, name, problems)
    page.goto(pages["dataset"])
    page.get_by_role("button", name=f"Actions for {first.original_filename}").click()
    check(page, "dataset-tile-menu", problems)
    page.keyboard.press("Escape")
    page.locator(".notifications__button").click()
    check(page, "dataset-notifications-menu", problems)
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Asset site API")
    check(page, "api-docs", problems)
    assert not problems, "\n".join(
        f"{name}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}"
        for name, found in problems.items() for v in found
    )
