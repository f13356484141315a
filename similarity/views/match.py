"""Match maps for the pages' "Show match": JSON with the overlay's address, or the PNG.

The same maps as the API's (``similarity.match``), behind the page's session login; the
results pages fetch them when someone asks, never before (``http.match_answer``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from similarity.http import match_answer
from similarity.views.base import not_found_as_404


@login_required
@require_GET
@not_found_as_404
def asset_match(request: HttpRequest, asset_id: str, result_id: str) -> HttpResponse:
    """Where ``result_id`` matches the asset (``?region=x,y,w,h`` of it, optionally)."""
    return match_answer(request, result_id, query_asset=asset_id)


@login_required
@require_GET
@not_found_as_404
def query_match(request: HttpRequest, query_id: str, result_id: str) -> HttpResponse:
    """Where ``result_id`` matches one of the user's query images (outside or region)."""
    return match_answer(request, result_id, query_image=query_id)
