"""The dashboard panel: the library's embedding state where editors land after login."""

from __future__ import annotations

from typing import Any

from wagtail.admin.ui.components import Component

from similarity.embedding import readiness
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE


class ReadinessPanel(Component):
    name = "similarity_readiness"
    template_name = "similarity_wagtail/panel.html"
    order = 150  # just below Wagtail's own summary, above recent edits

    def __init__(self, request: Any) -> None:
        self.request = request

    def render_html(self, parent_context: Any = None) -> str:
        if not get_access_policy().can_view(self.request.user, SITE_SCOPE):
            return ""
        return super().render_html(parent_context)

    def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
        user = self.request.user
        return {
            "readiness": readiness.readiness_for(SITE_SCOPE, user),
            "can_retry": get_access_policy().can_edit(user, SITE_SCOPE),
            "request": self.request,
        }
