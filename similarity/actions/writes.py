"""The built-in writes: delete, and the hook for tags (the app has no tag model)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy, ngettext

from similarity.actions.base import ActionField, ActionOutcome, BulkAction


class DeleteAction(BulkAction):
    """Delete through the host's own ``delete()``: its signals remove files after commit
    (as the host's own delete page does), and similarity's handlers drop our rows."""

    name = "delete"
    label = gettext_lazy("Delete")
    needs_edit = True
    confirm = True

    def run(self, user, project_id, assets, params):
        for asset in assets:
            asset.delete()
        count = len(assets)
        return ActionOutcome(count, ngettext("Deleted %(n)d image.", "Deleted %(n)d images.",
                                             count) % {"n": count})


class TagAction(BulkAction):
    """Host hook for "Add a tag": subclass it, implement ``add_tag``, name it in
    ``BULK_ACTIONS``. The app has no tag model of its own."""

    name = "tag"
    label = gettext_lazy("Add a tag")
    needs_edit = True

    def fields(self, user, project_id):
        return [ActionField("tag", gettext_lazy("Tag"), max_length=100)]

    def add_tag(self, user: Any, project_id: str, assets: list[Any], tag: str) -> int:
        """Tag the assets; answer how many were newly tagged."""
        raise NotImplementedError

    def run(self, user, project_id, assets, params):
        added = self.add_tag(user, project_id, assets, params["tag"])
        return ActionOutcome(
            len(assets),
            ngettext("Tagged %(n)d image “%(tag)s”.", "Tagged %(n)d images “%(tag)s”.",
                     len(assets)) % {"n": len(assets), "tag": params["tag"]},
            {"tag": params["tag"], "added": added},
        )
