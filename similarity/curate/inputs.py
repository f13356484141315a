"""What a curation request names, checked once for every door: how many images, which
datasets, which images. Each refusal says what to change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from similarity.errors import SimilarityError
from similarity.host.groups import group_choices, in_groups, within_group
from similarity.host.lookups import visible_assets
from similarity.host.models import asset_pks

#: Most images one request may pick or list: enough for a labelling batch, bounded so a
#: page and an answer stay small.
MAX_COUNT = 1000
DEFAULT_COUNT = 20
#: Datasets one request may name as references or exclusions.
MAX_GROUPS = 100


class CurationError(SimilarityError):
    """A curation request that cannot be answered as asked (the API's 400)."""

    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def extra(self) -> dict[str, Any]:
        return {"field": self.field} if self.field else {}


def parse_count(raw: Any, *, default: int = DEFAULT_COUNT, field: str = "count") -> int:
    """A count as a user sent it (1 to MAX_COUNT): a refusal names the field, never a
    silent clamp (a page that showed 1,000 when asked for 5,000 would look obeyed)."""
    if raw in (None, ""):
        return default
    if isinstance(raw, bool):
        raw = "x"
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_COUNT:
        raise CurationError(
            _("%(field)s must be a whole number from 1 to %(max)s.")
            % {"field": field, "max": f"{MAX_COUNT:,}"}, field)
    return value


def group_set(project_id: str, group: Any, *, field: str,
              choices: set[str] | None = None) -> QuerySet:
    """The scope's images in one of its groups (datasets); a key that is not one is a
    refusal naming the field (never another project's dataset). ``choices``: the scope's
    group keys, when the caller read them already."""
    if group in (None, "") or not isinstance(group, str | int):
        raise CurationError(_("%(field)s must name a dataset of this project.") % {"field": field},
                            field)
    if choices is None:
        choices = {key for key, _label in group_choices(project_id)}
    if str(group) not in choices:
        raise CurationError(
            _("%(field)s: no dataset %(key)s with images in this project.")
            % {"field": field, "key": str(group)[:100].replace("\x00", "")}, field)
    return within_group(project_id, str(group))


def group_sets(project_id: str, groups: Iterable[Any], *, field: str) -> list[str]:
    """The distinct group keys of ``groups``, each checked (at most ``MAX_GROUPS``)."""
    groups = list(groups)
    if len(groups) > MAX_GROUPS:
        raise CurationError(_("Name at most %(max)s datasets.") % {"max": MAX_GROUPS}, field)
    choices = {key for key, _label in group_choices(project_id)} if groups else set()
    keys: list[str] = []
    for group in groups:
        if group in (None, "") or not isinstance(group, str | int) or str(group) not in choices:
            group_set(project_id, group, field=field, choices=choices)  # raises, saying why
        if str(group) not in keys:
            keys.append(str(group))
    return keys


def images(project_id: str, user: Any, *, group: Any = None, ids: Iterable[Any] | None = None,
           group_field: str = "dataset") -> QuerySet:
    """What the user may see of the scope, narrowed to ``group`` and/or ``ids``."""
    assets = visible_assets(project_id, user)
    if group not in (None, ""):
        group_set(project_id, group, field=group_field)
        assets = in_groups(assets, [str(group)])
    if ids is not None:
        ids = [str(pk) for pk in ids]
        if len(ids) > 10 * MAX_COUNT:
            raise CurationError(_("Name at most %(max)s images.") % {"max": f"{10 * MAX_COUNT:,}"},
                                "ids")
        # a NUL names no image (and PostgreSQL refuses it in text): leave it out
        assets = assets.filter(pk__in=asset_pks(pk for pk in ids if "\x00" not in pk))
    return assets
