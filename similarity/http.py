"""HTTP helpers the doors share: the pages (``views``), the API (``api``) and Wagtail's
admin pages. Nothing below the doors imports this (or anything of ``django.http``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import register_converter
from django.urls.converters import get_converters
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from rest_framework.throttling import ScopedRateThrottle

from similarity.actions.base import ActionFile
from similarity.actions.query import parse_ids
from similarity.conf import similarity_settings
from similarity.embedding.readiness import get_readiness, text_readiness
from similarity.errors import NotFound, SimilarityError
from similarity.host.lookups import check_project
from similarity.match import compute, legend_colours, prepare
from similarity.search.region import parse_region
from similarity.search.results import SearchResult
from similarity.search.text import search_text

SEARCH_SCOPE = "similarity_search"


class KeyConverter:
    """A host's key in a path segment, whatever it holds: ``team/alpha``, ``a,b``, ``50%``.

    ``<str:>`` stops at "/", so such keys could not be reversed (500) or were cut short.
    The key travels percent-encoded in its segment and comes back exactly (Django
    quotes the "%" once more when reversing; the server decodes that layer).
    """

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: object) -> str:
        return quote(str(value), safe="")


KEY_CONVERTER = "similarity_key"
if KEY_CONVERTER not in get_converters():
    register_converter(KeyConverter, KEY_CONVERTER)


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


def search_by_text(user: Any, project_id: str, text: Any, *, order: str = "most",
                   limit: int = 100, within: Any = None) -> SearchResult:
    """A description searched in a project as this user may: what the API, the pages and
    Wagtail's admin all call. NotFound for a project the user cannot see."""
    check_project(user, project_id)
    state = text_readiness(get_readiness(project_id), user)
    return search_text(str(project_id), text, state=state, order=order, limit=limit,
                       user=user, within=within)


def search_wait(request: HttpRequest) -> int | None:
    """Seconds a page's search must wait under the search rate; None when it may run.

    The same throttle (and the same per-user history) as the API's, so a script cannot
    go round the API's rate by posting to the page."""
    throttle = SearchThrottle()
    if throttle.allow_request(request, _PageView()):
        return None
    return max(1, int(throttle.wait() or 1))


def ids_in_query(query: Any, name: str, legacy: str) -> list[str]:
    """Ids a query string names: repeated ``name=`` values, each whole (a host's key may
    hold a comma), then the older comma-separated ``legacy=1,2,3``; order kept, no repeats."""
    older = [part for value in query.getlist(legacy) for part in parse_ids(value)]
    return parse_ids([*query.getlist(name), *older])


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


def query_preview(query: Any) -> HttpResponse:
    """The 256 px JPEG preview of a user's own query image (the caller checked it is
    theirs): private to the browser, never sniffed as anything else."""
    response = HttpResponse(bytes(query.preview), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def match_answer(request: HttpRequest, result_id: str, **query: Any) -> HttpResponse:
    """A page's "Show match" answer (ours and Wagtail's admin): the map as JSON with its
    overlay's address and legend colours, or ``?format=png`` the overlay; a refusal as
    ``{"error", "code"}`` with its status. ``query``: what ``match.prepare`` takes."""
    wait = search_wait(request)
    if wait is not None:
        return JsonResponse({"error": f"Too many searches at once: try again in {wait} s.",
                             "code": "throttled"}, status=429, headers={"Retry-After": str(wait)})
    try:
        raw = request.GET.get("region")
        if raw and "query_asset" in query:
            query["region"] = parse_region(raw)
        answer = compute(prepare(request.user, result_id, side=request.GET.get("side", "result"),
                                 **query))
    except NotFound:
        raise
    except SimilarityError as exc:
        return JsonResponse({"error": str(exc), "code": exc.code}, status=exc.http_status,
                            headers=exc.headers())
    if request.GET.get("format") == "png":
        response = HttpResponse(answer.png(), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
    params = {key: value for key, value in request.GET.items() if key != "format"}
    png_url = f"{request.path}?{urlencode({**params, 'format': 'png'})}"
    return JsonResponse({**answer.as_dict(), "png_url": png_url, "legend": legend_colours()})
