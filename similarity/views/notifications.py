"""The notifications page, the menu's JSON, and marking them read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from similarity.embedding import notifications
from similarity.views.base import page_context, redirect_back


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    items = list(notifications.visible_notifications(request.user).prefetch_related("read_by")[:200])
    for item in items:
        item.unread = request.user not in item.read_by.all()
    return render(request, "similarity/notifications.html", page_context(items=items))


@login_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    # Only a form without an id means "all": a malformed one must not widen to every one.
    if "id" in request.POST:
        raw = request.POST["id"].strip()
        if not (raw.isascii() and raw.isdigit()):
            return HttpResponseBadRequest(_("Not a notification id: %(id)r.") % {"id": raw[:40]})
        ids: list[int] | None = [int(raw)]
    else:
        ids = None
    notifications.mark_read(request.user, ids)
    return redirect_back(request)


@login_required
def notifications_json(request: HttpRequest) -> JsonResponse:
    """The badge's count and the dropdown's items, as the menu's poll redraws them."""
    latest = notifications.visible_notifications(request.user)[:notifications.MENU_ITEMS]
    return JsonResponse(
        {
            "unread": notifications.unread_count(request.user),
            "latest": [
                {"id": n.pk, "message": n.message, "level": n.level, "url": n.url,
                 "level_label": str(n.get_level_display()), "created": n.created.isoformat(),
                 "updated": n.updated.isoformat()}
                for n in latest
            ],
        }
    )
