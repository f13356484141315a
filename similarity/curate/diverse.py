"""Pick N diverse images: greedy farthest-point (k-center) selection over unit vectors.

Why k-center: a labelling budget is best spent on images unlike each other and unlike
what is labelled already. Each step picks the image farthest (cosine distance) from
everything picked so far, so the picks cover the set: every image is within the last
pick's distance of some pick (a 2-approximation of the best possible cover).

Deterministic for the same input: the start is the most typical image (highest cosine to
the set's mean) unless a reference set is given (then the first pick is the image least
like the reference), and ties go to the lowest row id. Exact at every size: each step is
one matrix-vector product over the candidates (about 5 ms per step for 100,000 x 384
here), no sampling; the candidates' vectors come from the exact cache or, beyond it, are
read from PostgreSQL in chunks (``similarity.vectors.rows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

from similarity.curate import candidates as sets
from similarity.curate.inputs import CurationError, group_sets, images
from similarity.host.groups import in_groups
from similarity.host.lookups import visible_assets
from similarity.vectors.rows import nearest_similarity


def k_center(
    vectors: np.ndarray, count: int, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``count`` farthest-point picks among ``vectors`` (unit rows), and each
    pick's cosine distance to the nearest earlier pick or reference row (NaN for a start
    chosen as the most typical image)."""
    n = len(vectors)
    count = min(int(count), n)
    picks = np.zeros(count, dtype=np.int64)
    distances = np.full(count, np.nan, dtype=np.float64)
    if count == 0:
        return picks, distances
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    scratch = np.empty(n, dtype=np.float32)
    taken = 0
    if reference is not None and len(reference):
        best, _where = nearest_similarity(vectors, np.ascontiguousarray(reference, np.float32))
        nearest = (1.0 - best).astype(np.float32)
    else:
        centroid = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
        first = int(np.argmax(vectors @ centroid))
        picks[0] = first
        taken = 1
        np.dot(vectors, vectors[first], out=scratch)
        nearest = 1.0 - scratch
        nearest[first] = -np.inf
    while taken < count:
        pick = int(np.argmax(nearest))  # the first of equals: the lowest row id
        picks[taken] = pick
        distances[taken] = max(0.0, float(nearest[pick]))
        taken += 1
        if taken == count:
            break
        np.dot(vectors, vectors[pick], out=scratch)
        np.subtract(1.0, scratch, out=scratch)
        np.minimum(nearest, scratch, out=nearest)
        nearest[pick] = -np.inf
    return picks, distances


@dataclass
class Pick:
    asset_id: Any
    row_id: int
    distance: float | None  # to the nearest earlier pick or reference image; None: the start
    asset: Any = None  # the host's asset, filled for a page


def as_picks(chosen: sets.Candidates, positions: np.ndarray, distances: np.ndarray) -> list[Pick]:
    """``k_center``'s answer as picks of ``chosen`` (a NaN distance: the start, None)."""
    return [Pick(chosen.asset_ids[p], int(chosen.row_ids[p]),
                 None if np.isnan(d) else round(float(d), 6))
            for p, d in zip(positions.tolist(), distances.tolist(), strict=True)]


@dataclass
class Diverse:
    picks: list[Pick]
    candidates: int  # embedded images the picks were chosen from
    reference: int  # embedded images of the datasets the picks keep away from
    exact: bool = True
    reference_groups: list[str] = field(default_factory=list)


def pick_diverse(
    project_id: str,
    count: int,
    *,
    user: Any = None,
    group: Any = None,
    ids: list[Any] | None = None,
    exclude_similar_to: Iterable[Any] = (),
) -> Diverse:
    """``count`` diverse images of what ``user`` may see of the project, narrowed to a
    dataset and/or ids; with ``exclude_similar_to`` (datasets) the picks also keep away
    from those datasets' images (pick what is not labelled yet), which never are picks."""
    project_id = str(project_id)
    keys = group_sets(project_id, exclude_similar_to, field="exclude_similar_to")
    if group not in (None, "") and str(group) in keys:
        raise CurationError(_("The dataset to pick from cannot also be one to keep away from."),
                            "exclude_similar_to")
    model = sets.serving_for(project_id)
    chosen = sets.read(model, images(project_id, user, group=group, ids=ids))
    reference = None
    if keys:
        reference_assets = in_groups(visible_assets(project_id, user), keys)
        reference = sets.read(model, reference_assets)
        chosen = chosen.without(reference.row_ids)
    if ids is not None and not len(chosen):
        raise CurationError(_("None of the chosen images is embedded yet, or none is yours to see."),
                            "ids")
    positions, distances = k_center(chosen.vectors, count,
                                    None if reference is None else reference.vectors)
    return Diverse(as_picks(chosen, positions, distances), len(chosen),
                   0 if reference is None else len(reference),
                   reference_groups=keys)


def fill_assets(project_id: str, items: list[Any], *attributes: str) -> list[Any]:
    """The host's assets of one page of picks (or ranked items), in one query; an asset
    deleted since is left out."""
    names = attributes or ("asset_id",)
    wanted = {getattr(item, name) for item in items for name in names}
    assets = visible_assets(project_id).in_bulk(list(wanted))
    kept = []
    for item in items:
        found = [assets.get(getattr(item, name)) for name in names]
        if any(asset is None for asset in found):
            continue
        for name, asset in zip(names, found, strict=True):
            setattr(item, name.removesuffix("_id"), asset)
        kept.append(item)
    return kept
