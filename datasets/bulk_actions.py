"""The demo's own bulk actions, named in SIMILARITY["BULK_ACTIONS"] (assetsite/settings.py).

similarity checks the project, the user's rights and every asset before ``run`` is
called, and runs it in one transaction; these only do the work:

- tag: the project's ``Tag`` (created on first use), added to every selected asset;
- copy to dataset: new assets with copies of the files (the worker embeds them, as any
  upload);
- move to dataset: the asset's dataset changes, in the same project only; similarity's
  signal handlers follow the save (nothing is re-embedded: the file is the same).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from datasets.deletion import remove_files
from datasets.models import Asset, Dataset, Tag
from similarity.actions import ActionError, ActionField, ActionOutcome, BulkAction, TagAction

logger = logging.getLogger(__name__)


def asset_group(asset: Asset) -> str:
    """The exports' "group" column: the asset's dataset."""
    return asset.dataset.name


class DatasetTagAction(TagAction):
    """Add a project tag to the selected assets (assets already tagged stay as they are)."""

    def add_tag(self, user: Any, project_id: str, assets: list[Any], tag: str) -> int:
        row, _created = Tag.objects.get_or_create(project_id=int(project_id), name=tag)
        already = set(row.assets.filter(pk__in=[a.pk for a in assets]).values_list("pk", flat=True))
        new = [asset for asset in assets if asset.pk not in already]
        row.assets.add(*new)
        return len(new)


class _ToDataset(BulkAction):
    """Shared by copy and move: a target dataset of the same project."""

    needs_edit = True
    field_label = ""

    def fields(self, user: Any, project_id: str) -> list[ActionField]:
        if not str(project_id).isdigit():
            return []
        # copy and move offer the same list: read it once per request (kept on the user)
        memo = getattr(user, "__dict__", {}).setdefault("_bulk_dataset_choices", {})
        if project_id not in memo:
            memo[project_id] = [
                (str(pk), name) for pk, name in
                Dataset.objects.filter(project_id=int(project_id)).values_list("pk", "name")
            ]
        choices = memo[project_id]
        return [ActionField("dataset", self.field_label, kind="choice", choices=choices)]

    def clean(self, user: Any, project_id: str, data: Any) -> dict[str, Any]:
        """Checked against the database in ``target`` (the choices above may be a list
        read earlier in the request)."""
        value = str(data.get("dataset") or "").strip()
        if not value.isdigit():
            raise ActionError(_("Choose a dataset of this project."))
        return {"dataset": int(value)}

    def target(self, project_id: str, params: dict[str, Any]) -> Dataset:
        target = Dataset.objects.filter(pk=params["dataset"], project_id=int(project_id)).first()
        if target is None:  # fields() offered only this project's datasets
            raise ActionError(_("Choose a dataset of this project."))
        return target


class CopyToDatasetAction(_ToDataset):
    name = "copy"
    label = gettext_lazy("Copy")
    field_label = gettext_lazy("Copy to dataset")

    def run(self, user, project_id, assets, params):
        target = self.target(project_id, params)
        written: list[tuple[Any, str]] = []
        try:
            for asset in assets:
                copy = Asset(
                    dataset=target, original_filename=asset.original_filename, kind=asset.kind,
                    content_type=asset.content_type, size_bytes=asset.size_bytes,
                    width=asset.width, height=asset.height, metadata=asset.metadata,
                    uploaded_by=user if getattr(user, "pk", None) else None,
                )
                for name in ("file", "thumbnail"):
                    source = getattr(asset, name)
                    if source:
                        with source.open("rb") as handle:
                            getattr(copy, name).save(source.name, ContentFile(handle.read()),
                                                     save=False)
                        written.append((getattr(copy, name).storage, getattr(copy, name).name))
                copy.save()  # similarity's post_save queues the embedding on commit
        except BaseException:
            # the rows roll back with the transaction; the copied files must go too
            for storage, name in written:
                remove_files(storage, [name])
            raise
        count = len(assets)
        return ActionOutcome(
            count, ngettext("Copied %(n)d file to “%(dataset)s”.", "Copied %(n)d files to “%(dataset)s”.",
                            count) % {"n": count, "dataset": target},
            {"dataset": target.pk},
        )


class MoveToDatasetAction(_ToDataset):
    name = "move"
    label = gettext_lazy("Move")
    field_label = gettext_lazy("Move to dataset")

    def run(self, user, project_id, assets, params):
        target = self.target(project_id, params)
        moved = 0
        for asset in assets:
            if asset.dataset_id != target.pk:
                asset.dataset = target
                asset.save(update_fields=["dataset"])  # similarity's handlers follow it
                moved += 1
        return ActionOutcome(
            moved, ngettext("Moved %(n)d file to “%(dataset)s”.", "Moved %(n)d files to “%(dataset)s”.",
                            moved) % {"n": moved, "dataset": target},
            {"dataset": target.pk},
        )
