"""Duplicates you can act on, in Chromium (issue 24, item 5): "Keep this one", then the
marked images, already selected, deleted with one confirmed click."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from datasets.models import Asset
from tests.browser_tools import log_in, screenshot, serious_violations
from tests.test_insight_views import THRESHOLD, planted  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_keep_one_then_delete_the_marked_ones(page, planted, project_a):  # noqa: F811
    originals, copies = planted
    log_in(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/similarity/projects/{project_a.pk}/duplicates/?threshold={THRESHOLD}")
    group = page.get_by_test_id("dup-group").filter(has=page.locator(
        f'li[data-asset-id="{originals[5].pk}"]'))
    group.locator(f'li[data-asset-id="{originals[5].pk}"]').get_by_role(
        "button", name="Keep this one").click()
    expect(page.locator(".messages")).to_contain_text("2 marked for deletion")
    page.get_by_test_id("marked-link").click()
    expect(page.get_by_test_id("marked-count")).to_contain_text("2 images were marked")
    expect(page.get_by_test_id("select-count")).to_have_text("2 selected")  # already selected
    assert serious_violations(page) == []
    screenshot(page, "duplicates-marked")
    page.get_by_test_id("actions-toggle").click()
    page.get_by_role("button", name="Delete…").click()
    dialog = page.locator("[data-confirm-dialog]")
    expect(dialog).to_contain_text("Delete 2 images?")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".messages")).to_contain_text("Deleted 2 images.")
    expect(page.get_by_test_id("no-marked")).to_be_visible()
    assert not Asset.objects.filter(pk__in=[copies["jpeg5"].pk, copies["small5"].pk]).exists()
    assert Asset.objects.filter(pk=originals[5].pk).exists()
