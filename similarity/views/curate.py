"""Pages of curation: pick diverse images, what a labelled set does not cover, leakage
between two datasets. Each shows its answer as a grid the selection toolbar acts on (copy
the picks to a "to label" dataset, tag them, export them)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from similarity import curate
from similarity.errors import SimilarityError
from similarity.host.groups import group_choices
from similarity.host.lookups import can_edit, check_project
from similarity.http import ids_in_query
from similarity.insight import leakage as leaks
from similarity.insight import reading
from similarity.views.base import not_found_as_404, scope_context

PER_PAGE = 60
PAIRS_PER_PAGE = 50


def _page_number(request: HttpRequest) -> str | None:
    return request.GET.get("page")


@login_required
@not_found_as_404
def diverse(request: HttpRequest, project_id: str) -> HttpResponse:
    """``?count=20`` diverse images of the project, of a ``dataset``, or of the selection
    (``id=`` per image), kept away from the ``exclude`` datasets."""
    check_project(request.user, project_id)
    groups = group_choices(project_id)
    params = request.GET
    ids = ids_in_query(params, "id", "ids") or None
    dataset = params.get("dataset") or None
    exclude = [key for key in params.getlist("exclude") if key]
    found, error, status, count = None, None, 200, curate.DEFAULT_COUNT
    try:
        count = curate.parse_count(params.get("count"))
        found = curate.pick_diverse(project_id, count, user=request.user, group=dataset, ids=ids,
                                    exclude_similar_to=exclude)
        found.picks = curate.fill_assets(project_id, found.picks)
    except SimilarityError as exc:
        error, status = str(exc), exc.http_status
    return render(request, "similarity/curate/diverse.html", scope_context(
        project_id, found=found, error=error, count=count, groups=groups, dataset=dataset or "",
        exclude=exclude, ids=ids or [], max_count=curate.MAX_COUNT,
        editor=can_edit(request.user, project_id), active="diverse",
    ), status=status)


@login_required
@not_found_as_404
def coverage(request: HttpRequest, project_id: str) -> HttpResponse:
    """The ``candidates`` dataset's images least like anything in the ``reference``
    datasets first; ``diverse=N`` picks N diverse among them instead."""
    check_project(request.user, project_id)
    groups = group_choices(project_id)
    params = request.GET
    candidates = params.get("candidates") or ""
    references = [key for key in params.getlist("reference") if key]
    context: dict[str, Any] = {"groups": groups, "candidates": candidates,
                               "references": references, "diverse": params.get("diverse") or "",
                               "max_count": curate.MAX_COUNT, "active": "coverage",
                               "editor": can_edit(request.user, project_id)}
    status = 200
    if candidates or references:
        try:
            if context["diverse"]:
                count = curate.parse_count(context["diverse"], field=_("diverse"))
                found = curate.diverse_uncovered(project_id, candidates, references, count,
                                                 user=request.user)
                found.picks = curate.fill_assets(project_id, found.picks)
                context["found"] = found
            else:
                ranked = curate.rank_coverage(project_id, candidates, references, user=request.user)
                page = Paginator(range(len(ranked)), PER_PAGE).get_page(_page_number(request))
                start = page.start_index() - 1 if len(ranked) else 0
                context.update(
                    ranked=ranked, page=page,
                    items=curate.fill_assets(project_id, ranked.items(start, start + PER_PAGE),
                                             "asset_id", "nearest_asset_id"),
                    query="&" + urlencode({"candidates": candidates, "reference": references},
                                          doseq=True))
        except SimilarityError as exc:
            context["error"], status = str(exc), exc.http_status
    return render(request, "similarity/curate/coverage.html",
                  scope_context(project_id, **context), status=status)


def _default_pair(groups: list[tuple[str, str]]) -> tuple[str, str]:
    """"train" and "test" when the project has them (any case), else its first two."""
    by_name = {label.strip().lower(): key for key, label in groups}
    if "train" in by_name and "test" in by_name:
        return by_name["train"], by_name["test"]
    keys = [key for key, _label in groups]
    return (keys[0], keys[1]) if len(keys) > 1 else ("", "")


@login_required
@not_found_as_404
def leakage(request: HttpRequest, project_id: str) -> HttpResponse:
    """Pairs across two datasets at or above a similarity: byte-identical first."""
    check_project(request.user, project_id)
    groups = group_choices(project_id)
    default_a, default_b = _default_pair(groups)
    a, b = request.GET.get("a") or default_a, request.GET.get("b") or default_b
    labels = dict(groups)
    context: dict[str, Any] = {
        "groups": groups, "a": a, "b": b, "a_label": labels.get(a, ""),
        "b_label": labels.get(b, ""), "active": "leakage",
        "min_threshold": leaks.MIN_THRESHOLD, "default_threshold": leaks.DEFAULT_THRESHOLD,
        "threshold": leaks.DEFAULT_THRESHOLD, "editor": can_edit(request.user, project_id),
        "status": reading.status(project_id, user=request.user),
    }
    status = 200
    try:
        context["threshold"] = leaks.parse_threshold(request.GET.get("threshold"))
    except leaks.LeakageError as exc:
        context["error"], status = str(exc), 400
    if a and b and "error" not in context:
        try:
            found = leaks.leakage(project_id, a, b, context["threshold"], user=request.user)
        except reading.InsightNotReady as exc:
            return render(request, "similarity/insight/not_ready.html",
                          scope_context(project_id, status=exc.progress, title=_("Leakage")))
        except SimilarityError as exc:
            context["error"], status = str(exc), exc.http_status
        else:
            page = Paginator(found.pairs, PAIRS_PER_PAGE).get_page(_page_number(request))
            page.object_list = curate.fill_assets(project_id, list(page.object_list),
                                                  "a_asset_id", "b_asset_id")
            context.update(found=found, page=page, query="&" + urlencode(
                {"a": a, "b": b, "threshold": context["threshold"]}))
    return render(request, "similarity/insight/leakage.html",
                  scope_context(project_id, **context), status=status)
