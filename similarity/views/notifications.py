"""The notifications page, the menu's JSON, and marking them read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
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
    raw = request.POST.get("id")
    ids = [int(raw)] if raw and raw.isdigit() else None
    notifications.mark_read(request.user, ids)
    return redirect_back(request)


@login_required
def notifications_json(request: HttpRequest) -> JsonResponse:
    latest = notifications.visible_notifications(request.user)[:5]
    return JsonResponse(
        {
            "unread": notifications.unread_count(request.user),
            "latest": [
                {"id": n.pk, "message": n.message, "level": n.level, "url": n.url,
                 "created": n.created.isoformat()}
                for n in latest
            ],
        }
    )
