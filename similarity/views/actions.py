"""The page side of bulk actions: the selection toolbar's form posts here.

Form fields: ``ids`` (one value per checked image, each whole: keys may hold commas), the
action's parameters as ``<action>-<param>`` (so two actions may both have a "dataset"
field), the query of the results page as ``query-positive-id`` / ``query-negative-id`` (one
value per id; ``query-positive`` / ``query-negative`` comma-separated) / ``query-image``,
and ``next`` (where to go back). A file comes back as a download; a write goes back to
``next`` with a message. An action that asks for confirmation (delete) and arrives
without ``confirm=1`` (the toolbar's dialog sets it; without JavaScript it is missing)
shows a confirmation page naming the count first.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from similarity import actions
from similarity.http import download, ids_in_query, safe_next
from similarity.views.base import not_found_as_404, page_context


@login_required
@require_POST
@not_found_as_404
def run_action(request: HttpRequest, project_id: str, name: str) -> HttpResponse:
    post = request.POST
    ids = actions.parse_ids(post.getlist("ids"))
    prefix = f"{name}-"
    data = {key[len(prefix):]: value for key, value in post.items() if key.startswith(prefix)}
    query = {"positive": ids_in_query(post, "query-positive-id", "query-positive"),
             "negative": ids_in_query(post, "query-negative-id", "query-negative"),
             "image": post.get("query-image", "")}
    back = safe_next(request)
    try:
        prepared = actions.prepare(request.user, project_id, name, ids, data, query)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if prepared.action.confirm and post.get("confirm") != "1":
        return render(request, "similarity/action_confirm.html", page_context(
            action=prepared.action,
            count=len(prepared.assets),
            assets=prepared.assets[:20],
            fields=[(key, value) for key, value in post.lists() for value in value
                    if key not in ("csrfmiddlewaretoken", "confirm")],
            back=back,
        ))
    try:
        result = actions.execute(request.user, prepared)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if isinstance(result, actions.ActionOutcome):
        messages.success(request, result.message)
        return redirect(back)
    return download(result)
