"""Sidebar data: the user's projects for the switcher and the current project."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from datasets import access


def sidebar(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"sidebar_projects": access.visible_projects(user).only("id", "name")}
