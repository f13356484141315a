"""The demo's "Add to dataset" for an image searched with (SIMILARITY['ADD_QUERY_IMAGE']).

similarity never stores an outside image; when the user chooses to keep it, the browser
sends the file again and this hook stores it as a new asset through the demo's own upload
intake (format by content, caps, thumbnail), in a dataset of the query's project that the
user may edit.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from datasets import access
from datasets.models import Asset, Dataset
from datasets.uploads import create_asset


class DatasetTargets:
    """Targets are the datasets of the project; only its editors get any."""

    def _project_pk(self, project_id: str) -> int | None:
        try:
            return int(project_id)
        except (TypeError, ValueError):
            return None

    def targets(self, user: Any, project_id: str) -> list[tuple[str, str]]:
        pk = self._project_pk(project_id)
        if pk is None or not access.can_edit(user, pk):
            return []
        return [(str(d.pk), d.name) for d in Dataset.objects.filter(project_id=pk).order_by("name")]

    def add(self, user: Any, project_id: str, target: str, uploaded_file: Any) -> Asset:
        """Store the file in dataset ``target``; UploadRejected (a ValueError) says why not."""
        pk = self._project_pk(project_id)
        if pk is None or not access.can_edit(user, pk):
            raise PermissionDenied("Only the project's editors can add images.")
        dataset = Dataset.objects.filter(pk=target, project_id=pk).first() \
            if str(target).isdigit() else None
        if dataset is None:
            raise ValueError("that dataset is not in this project")
        return create_asset(dataset, uploaded_file, user=user)
