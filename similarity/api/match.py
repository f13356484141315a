"""API of match maps: where in an image it matches the query, as numbers or an overlay.

``GET assets/{query}/match/{result}/`` (optionally ``?region=x,y,w,h`` of the query) and
``GET query-images/{id}/match/{result}/`` (an outside image or a region search of the
user's) answer the grid as JSON, or with ``?format=png`` the overlay. Both images must
be visible to the user (404 otherwise) and of one project.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers
from rest_framework.response import Response

from similarity.api.base import SearchThrottle, SimilarityAPIView
from similarity.match import SIDES, compute, prepare
from similarity.search.region import parse_region


class PNGRenderer(renderers.BaseRenderer):
    """``?format=png``: the overlay's bytes as they are."""

    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict | None = None) -> bytes:
        return data if isinstance(data, bytes) else b""


_PARAMETERS = [
    OpenApiParameter("side", OpenApiTypes.STR, enum=list(SIDES), default="result",
                     description="the map on the result (where it matches the query) or on "
                                 "the query (where it matches the result)"),
    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "png"], default="json",
                     description="png: an RGBA overlay with the image's proportions"),
]
_RESPONSES = {
    200: OpenApiResponse(description="grid (rows, columns), values (cosine of the query's "
                                     "vector to each patch token, rows top first), min, "
                                     "max, peak, description (a text alternative)"),
    400: OpenApiResponse(description="A bad region or side, or images of two projects"),
    404: OpenApiResponse(description="Either image is not yours to see"),
    503: OpenApiResponse(description="The map cannot be computed now (worker, model change)"),
}


class _MatchView(SimilarityAPIView):
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"
    renderer_classes = [renderers.JSONRenderer, PNGRenderer]

    def answer(self, request: Any, **query: Any) -> Response:
        side = request.query_params.get("side", "result")
        answer = compute(prepare(request.user, self.kwargs["result_id"], side=side, **query))
        if request.accepted_renderer.format == "png":
            response = Response(answer.png(), content_type="image/png")
            response["Cache-Control"] = "private, max-age=3600"
            return response
        return Response(answer.as_dict())

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        # an error asked for as PNG is still an error someone must read: answer it as JSON
        if getattr(request, "accepted_renderer", None) is not None and \
                request.accepted_renderer.format == "png" and not isinstance(
                    getattr(response, "data", b""), bytes):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class AssetMatchView(_MatchView):
    @extend_schema(
        summary="Where a result matches an image of the project (or a region of it)",
        parameters=[OpenApiParameter("region", OpenApiTypes.STR, required=False,
                                     description="x,y,w,h of the query image in fractions "
                                                 "(0 to 1)"), *_PARAMETERS],
        responses=_RESPONSES,
    )
    def get(self, request, asset_id: str, result_id: str):
        raw = request.query_params.get("region")
        region = parse_region(raw) if raw not in (None, "") else None
        return self.answer(request, query_asset=asset_id, region=region)


class QueryImageMatchView(_MatchView):
    @extend_schema(
        summary="Where a result matches one of your query images (an outside image or a "
                "region search)",
        parameters=_PARAMETERS, responses=_RESPONSES,
    )
    def get(self, request, query_id: str, result_id: str):
        return self.answer(request, query_image=query_id)
