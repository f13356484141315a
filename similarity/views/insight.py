"""Pages of the insight stage: duplicates, most unusual images, progress JSON.

They only read what the worker stored; a project still being analysed shows the stage's
progress instead (and the page's script reloads it once ready).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from similarity.host.groups import group_choices, within_group
from similarity.host.links import insight_url, results_url
from similarity.host.lookups import can_edit, check_project, visible_assets
from similarity.host.models import asset_pks
from similarity.insight import reading as queries
from similarity.models import DuplicateMark, Embedding
from similarity.views.base import not_found_as_404, scope_context

GROUPS_PER_PAGE = 20
OUTLIERS_PER_PAGE = 60
#: The marked page shows (and selects) at most this many: one bulk action's bound.
MARKED_SHOWN = 100


@login_required
@not_found_as_404
def status_json(request: HttpRequest, project_id: str) -> JsonResponse:
    check_project(request.user, project_id)
    return JsonResponse(queries.status(project_id, user=request.user))


@login_required
@not_found_as_404
def duplicates(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    error = None
    try:
        threshold = queries.parse_threshold(request.GET.get("threshold"))
    except ValueError as exc:
        error, threshold = str(exc), queries.DEFAULT_THRESHOLD
    show_reviewed = request.GET.get("reviewed") == "1"
    try:
        groups = queries.duplicate_groups(project_id, threshold, user=request.user)
    except queries.InsightNotReady as exc:
        return render(request, "similarity/insight/not_ready.html",
                      scope_context(project_id, status=exc.progress, title=_("Duplicates")))
    marks = dict(
        DuplicateMark.objects.filter(
            embedding_id__in=[row for group in groups for row in group.rows]
        ).values_list("embedding_id", "mark")
    )
    reviewed = [group for group in groups if all(row in marks for row in group.rows)]
    if not show_reviewed:
        groups = [group for group in groups if not all(row in marks for row in group.rows)]
    page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    queries.fill_members(project_id, list(page.object_list))
    for group in page.object_list:
        for member in group.members:
            member.mark = marks.get(member.row_id, "")
    return render(
        request,
        "similarity/insight/duplicates.html",
        scope_context(
            project_id, page=page, threshold=threshold, error=error,
            default_threshold=queries.DEFAULT_THRESHOLD, min_threshold=queries.MIN_THRESHOLD,
            status=queries.status(project_id, user=request.user), can_edit=can_edit(request.user, project_id),
            reviewed_count=len(reviewed), show_reviewed=show_reviewed,
            query="&" + urlencode({"threshold": threshold, **({"reviewed": 1} if show_reviewed else {})}),
            marked_count=queries.marked_for_deletion(project_id, user=request.user).count(),
        ),
    )


def _check_reviewer(request: HttpRequest, project_id: str) -> None:
    """Reviewing duplicates (keep, hide, unmark) is for the project's editors."""
    check_project(request.user, project_id)
    if not can_edit(request.user, project_id):
        raise PermissionDenied(_("Only the project's editors can review duplicates."))


@login_required
@require_POST
@not_found_as_404
def keep(request: HttpRequest, project_id: str) -> HttpResponse:
    """"Keep this one": the chosen image is kept, the rest of its group marked for deletion;
    with ``hide`` every image of the group is kept and the group leaves the list."""
    _check_reviewer(request, project_id)
    try:
        rows = [int(part) for part in request.POST.get("rows", "").split(",") if part]
        keeper = int(request.POST["keep"]) if request.POST.get("keep") else None
    except ValueError as exc:
        raise Http404("Bad group.") from exc
    visible = set(
        Embedding.objects.filter(
            pk__in=rows, project_id=project_id,
            asset_id__in=visible_assets(project_id, request.user).values("pk"),
        ).values_list("pk", flat=True)
    )
    if len(visible) != len(set(rows)) or len(visible) < 2 or (
        keeper is not None and keeper not in visible
    ):
        raise Http404("Not found.")
    for row in visible:
        mark = DuplicateMark.Mark.KEEP if keeper in (None, row) else DuplicateMark.Mark.DELETE
        DuplicateMark.objects.update_or_create(
            embedding_id=row, defaults={"project_id": project_id, "mark": mark,
                                        "user": request.user})
    if keeper is None:
        messages.success(request, _("Group hidden: every image in it is kept."))
    else:
        count = len(visible) - 1
        messages.success(request, ngettext(
            "Kept one image; %(count)d marked for deletion: delete or move it from "
            "“Marked for deletion”.",
            "Kept one image; %(count)d marked for deletion: delete or move them from "
            "“Marked for deletion”.", count) % {"count": count})
    target = insight_url("duplicates", project_id)
    threshold = request.POST.get("threshold")
    return redirect(f"{target}?threshold={threshold}" if threshold else target)


@login_required
@not_found_as_404
def outliers(request: HttpRequest, project_id: str) -> HttpResponse:
    check_project(request.user, project_id)
    group = request.GET.get("group") or None
    within = within_group(project_id, group)
    try:
        ranking = queries.outliers(project_id, user=request.user, within=within)
    except queries.InsightNotReady as exc:
        return render(request, "similarity/insight/not_ready.html",
                      scope_context(project_id, status=exc.progress, title=_("Most unusual")))
    page = Paginator(ranking, OUTLIERS_PER_PAGE).get_page(request.GET.get("page"))
    ranked = queries.assets_for(list(page.object_list))
    for item in ranked:
        item.results_url = results_url(item.asset.pk)
    offset = page.start_index()
    return render(
        request,
        "similarity/insight/outliers.html",
        scope_context(project_id, page=page, ranked=ranked, offset=offset, group=group or "",
                 query=f"&{urlencode({'group': group})}" if group else "",
                 groups=group_choices(project_id),
                 status=queries.status(project_id, user=request.user)),
    )


@login_required
@not_found_as_404
def marked(request: HttpRequest, project_id: str) -> HttpResponse:
    """Everything marked for deletion across the duplicate groups, selected, with the bulk
    actions (delete with a confirmation naming the count, move, copy, tag, export)."""
    check_project(request.user, project_id)
    marked_assets = queries.marked_for_deletion(project_id, user=request.user)
    return render(request, "similarity/insight/marked.html", scope_context(
        project_id, assets=list(marked_assets[:MARKED_SHOWN]), shown_max=MARKED_SHOWN,
        total=marked_assets.count(), editor=can_edit(request.user, project_id)))


@login_required
@require_POST
@not_found_as_404
def unmark(request: HttpRequest, project_id: str) -> HttpResponse:
    """Keep the given images after all: their marks go, their groups come back."""
    _check_reviewer(request, project_id)
    ids = [value for value in request.POST.getlist("id") if value]
    visible = list(queries.marked_for_deletion(project_id, user=request.user)
                   .filter(pk__in=asset_pks(ids)).values_list("pk", flat=True))
    count = queries.unmark(project_id, visible)
    messages.success(request, ngettext("%(count)d image is no longer marked.",
                                       "%(count)d images are no longer marked.", count)
                     % {"count": count})
    return redirect(insight_url("duplicates-marked", project_id))
