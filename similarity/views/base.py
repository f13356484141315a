"""What every page shares: its base template, the 404 for what the user may not see, and
the way back after a form."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from similarity.conf import similarity_settings
from similarity.embedding.readiness import readiness_for
from similarity.errors import NotFound
from similarity.host.lookups import sees_whole_scope
from similarity.host.scopes import get_project
from similarity.http import safe_next


def page_context(**extra: Any) -> dict[str, Any]:
    """A page's context: the host's base template (BASE_TEMPLATE) and ``extra``."""
    return {"base_template": similarity_settings.BASE_TEMPLATE, **extra}


def scope_context(project_id: str | None, **extra: Any) -> dict[str, Any]:
    """A page of one scope: its id and the host's project object (None for the site)."""
    project = get_project(project_id) if project_id is not None else None
    return page_context(project_id=project_id, project=project, **extra)


def not_found_as_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """What the app's functions cannot find for this user is the page's 404."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    return wrapped


def redirect_back(request: HttpRequest) -> HttpResponse:
    """To the form's ``next`` or the referring page, if it is on this site; else home."""
    return redirect(safe_next(request))


def shown_readiness(request: HttpRequest, project_id: str, result: Any = None) -> Any:
    """The readiness a results page shows: the search's own record (read already), or the
    counts of what this user can see when they see only part of the scope."""
    if result is not None and sees_whole_scope(request.user, project_id):
        return result.readiness
    return readiness_for(project_id, request.user)
