"""HTTP helpers the doors share: the pages (``views``), the API (``api``) and Wagtail's
admin pages. Nothing below the doors imports this (or anything of ``django.http``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import url_has_allowed_host_and_scheme
from rest_framework.throttling import ScopedRateThrottle

from similarity.actions.base import ActionFile
from similarity.conf import similarity_settings

SEARCH_SCOPE = "similarity_search"


class SearchThrottle(ScopedRateThrottle):
    """The search rate per user, for the API's views and the pages' search posts alike;
    works without the host configuring a rate for our scope."""

    scope_attr = "throttle_scope"

    def get_rate(self):
        rates = self.THROTTLE_RATES or {}
        if self.scope in rates:
            return rates[self.scope]
        return similarity_settings.SEARCH_THROTTLE_RATE


class _PageView:
    throttle_scope = SEARCH_SCOPE


def search_wait(request: HttpRequest) -> int | None:
    """Seconds a page's search must wait under the search rate; None when it may run.

    The same throttle (and the same per-user history) as the API's, so a script cannot
    go round the API's rate by posting to the page."""
    throttle = SearchThrottle()
    if throttle.allow_request(request, _PageView()):
        return None
    return max(1, int(throttle.wait() or 1))


def safe_next(request: HttpRequest, default: str = "/", *, referer: bool = True) -> str:
    """Where to go back to: the form's ``next`` (or, with ``referer``, the referring page)
    when it is on this site; else ``default``. Another host, ``//evil``, ``/\\evil`` (which
    browsers read as ``//evil``) and ``javascript:`` are not."""
    target = request.POST.get("next")
    if not target and referer:
        target = request.headers.get("Referer")
    target = (target or "").strip().replace("\\", "/")
    if not target or target.startswith("//") or not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return default
    return target


def see_other(url: str) -> HttpResponse:
    """A 303 to ``url``: after a POST, the browser GETs the result."""
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


def wants_json(request: HttpRequest) -> bool:
    """A script (``Accept: application/json``), not a browser form."""
    return "application/json" in request.headers.get("Accept", "")


def download(file: ActionFile | HttpResponseBase | Any) -> HttpResponseBase:
    """An action's file as the browser downloads it; a response a host's own action made
    goes out as it is."""
    if isinstance(file, HttpResponseBase):
        return file
    if file.streamed:
        response: HttpResponseBase = StreamingHttpResponse(file.content,
                                                           content_type=file.content_type)
    else:
        response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    response["Cache-Control"] = "no-store"
    return response
