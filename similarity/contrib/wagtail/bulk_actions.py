"""Bulk action on the image listing: select images, then "Find similar to selection"."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin import messages
from wagtail.images.views.bulk_actions.image_bulk_action import ImageBulkAction

from similarity.contrib.wagtail.access import VISIBLE_ACTIONS
from similarity.contrib.wagtail.views import MAX_SELECTION


class FindSimilarToSelectionBulkAction(ImageBulkAction):
    """No confirmation step: it changes nothing, so it goes straight to the results."""

    display_name = _("Find similar")  # Wagtail's bulk bar cuts longer labels; aria_label says it all
    action_type = "similarity_find_similar"
    aria_label = _("Find images similar to the selected images")
    action_priority = 5

    def check_perm(self, image: Any) -> bool:
        return self.permission_policy.user_has_any_permission_for_instance(
            self.request.user, list(VISIBLE_ACTIONS), image
        )

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
