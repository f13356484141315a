"""Bulk actions on Wagtail's image listing and on our results pages (Wagtail's own
bulk-action framework: its checkboxes, its footer, its URLs): "Find similar" to the
selection, and the reusable app's downloads (ZIP of the originals, CSV and JSON exports)
run through the same ``similarity.actions`` code as the app's own pages and API."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin import messages
from wagtail.images.views.bulk_actions.image_bulk_action import ImageBulkAction

from similarity.actions.base import ActionError
from similarity.actions.running import perform
from similarity.contrib.wagtail.access import VISIBLE_ACTIONS
from similarity.contrib.wagtail.views import MAX_SELECTION
from similarity.host.scopes import SITE_SCOPE
from similarity.http import download


class VisibleImagesBulkAction(ImageBulkAction):
    """Acts on the selected images the editor may see (choose or change): reading them
    changes nothing, so Wagtail's "change" permission is not required."""

    def check_perm(self, image: Any) -> bool:
        return self.permission_policy.user_has_any_permission_for_instance(
            self.request.user, list(VISIBLE_ACTIONS), image
        )


class FindSimilarToSelectionBulkAction(VisibleImagesBulkAction):
    """No confirmation step: it changes nothing, so it goes straight to the results."""

    # Wagtail's bulk bar cuts longer labels; aria_label says it all, starting with the
    # visible label (WCAG 2.5.3: speech users say what they see)
    display_name = _("Find similar")
    action_type = "similarity_find_similar"
    aria_label = _("Find similar to the selected images")
    action_priority = 5

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        images, _denied = self.get_actionable_objects()
        if len(images) > MAX_SELECTION:
            messages.warning(request, _("Only the first %(count)d selected images are used.")
                             % {"count": MAX_SELECTION})
        ids = ",".join(str(image.pk) for image in images[:MAX_SELECTION])
        if not ids:
            return redirect(self.next_url)
        return redirect(f"{reverse('similarity_wagtail:selection')}?ids={ids}")

    post = get


class NotLikeTheseBulkAction(VisibleImagesBulkAction):
    """On a results page: the same search, pushed away from the selected images (they
    become counter-examples), as the selection results page with ``not=``."""

    display_name = _("Not like these")
    action_type = "similarity_not_like"
    aria_label = _("Not like these: search again away from the selected images")
    action_priority = 65  # in "More": it refines a results page, not the image listing

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        images, _denied = self.get_actionable_objects()
        positives, negatives, order = search_of(self.next_url)
        if not positives:
            messages.warning(request, _("“Not like these” refines a search by images: use it "
                                        "on the results of an image or a selection."))
            return redirect(self.next_url)
        negatives = list(dict.fromkeys(
            [*negatives, *(str(image.pk) for image in images if str(image.pk) not in positives)]
        ))[:MAX_SELECTION]
        query = {"ids": ",".join(positives), "not": ",".join(negatives)}
        if order == "least":
            query["order"] = "least"
        return redirect(f"{reverse('similarity_wagtail:selection')}?{urlencode(query)}")

    post = get


def search_of(url: str) -> tuple[list[str], list[str], str]:
    """The examples, counter-examples and order of one of our results pages' URLs (the
    bulk action's "next"); no examples for any other page."""
    parts = urlsplit(url)
    try:
        match = resolve(parts.path)
    except Resolver404:
        return [], [], "most"
    params = parse_qs(parts.query)
    order = (params.get("order") or ["most"])[0]

    def listed(name: str) -> list[str]:
        return [pk for pk in (params.get(name) or [""])[0].split(",") if pk.strip()]

    if match.namespace.endswith("similarity_wagtail") and match.url_name == "results":
        return [str(match.kwargs["image_id"])], [], order
    if match.namespace.endswith("similarity_wagtail") and match.url_name == "selection":
        return listed("ids"), listed("not"), order
    return [], [], order


class DownloadBulkAction(VisibleImagesBulkAction):
    """A download of the selected images: no confirmation step (it changes nothing); the
    browser saves the file and stays on the page. ``similarity_action`` names the
    reusable app's action (``similarity.actions``) that builds the file."""

    similarity_action = ""

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        images, _denied = self.get_actionable_objects()
        if not images:
            return redirect(self.next_url)
        try:
            file = perform(request.user, SITE_SCOPE, self.similarity_action,
                           [str(image.pk) for image in images], {})
        except ActionError as exc:  # more than BULK_ACTIONS_MAX_ASSETS, say
            messages.error(request, str(exc))
            return redirect(self.next_url)
        return download(file)

    post = get


class DownloadZipBulkAction(DownloadBulkAction):
    display_name = _("Download ZIP")
    action_type = "similarity_download_zip"
    aria_label = _("Download ZIP of the selected images' original files")
    action_priority = 60
    similarity_action = "download-zip"


class ExportCSVBulkAction(DownloadBulkAction):
    display_name = _("Export CSV")
    action_type = "similarity_export_csv"
    aria_label = _("Export CSV of the selected images")
    action_priority = 61
    similarity_action = "export-csv"


class ExportJSONBulkAction(DownloadBulkAction):
    display_name = _("Export JSON")
    action_type = "similarity_export_json"
    aria_label = _("Export JSON of the selected images")
    action_priority = 62
    similarity_action = "export-json"


BULK_ACTIONS = (FindSimilarToSelectionBulkAction, NotLikeTheseBulkAction, DownloadZipBulkAction,
                ExportCSVBulkAction, ExportJSONBulkAction)
