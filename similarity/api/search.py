"""API of similarity search: images of a project ranked against one of its images, against
examples and counter-examples, or against an image from outside it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from similarity.api.base import SearchThrottle, SimilarityAPIView, asset_serializer_class
from similarity.conf import similarity_settings
from similarity.host.links import image_preview_url, image_results_url
from similarity.host.lookups import check_project, get_asset_for, get_assets_for
from similarity.http import search_by_text
from similarity.search import SearchError, find_similar, find_similar_to_selection, outside, validate
from similarity.search.gaps import parse_max_similarity, parse_min_similarity, trim
from similarity.search.query import MAX_EXAMPLES
from similarity.search.region import Region, parse_region


class MatchSerializer(serializers.Serializer):
    """Schema of one result (the view builds results in one pass, see SimilarView)."""

    asset = serializers.DictField()
    similarity = serializers.FloatField()
    distance = serializers.FloatField()


class SimilarResponseSerializer(serializers.Serializer):
    query = serializers.DictField()
    queries = serializers.ListField(child=serializers.DictField())
    negatives = serializers.ListField(child=serializers.DictField())
    min_similarity = serializers.FloatField(allow_null=True)
    max_similarity = serializers.FloatField(allow_null=True)
    order = serializers.ChoiceField(choices=["most", "least"])
    limit = serializers.IntegerField()
    ready = serializers.BooleanField()
    exact = serializers.BooleanField()
    model = serializers.CharField()
    scope_size = serializers.IntegerField()
    results = MatchSerializer(many=True)


def similar_answer(request: Any, view: APIView, result: Any, min_similarity: float | None,
                   image: dict | None = None, max_similarity: float | None = None) -> dict:
    """The one response shape of every similarity query (GET by asset, POST by project).

    ``image``: the summary of an outside query image, which leads ``queries``.
    """
    matches = trim(result.matches, min_similarity, max_similarity)
    serializer_class = asset_serializer_class()
    context = view.get_renderer_context() | {"request": request}
    # One serializer over all result assets: building one per result cost ~0.7 ms each.
    assets = serializer_class([m.asset for m in matches], many=True, context=context)
    if result.text:  # a description: the query is the text, never an asset
        queries = [{"text": result.text}]
    else:
        assets_queried = result.queries or ([] if image else [result.query])
        queries = ([image] if image else []) + list(
            serializer_class(assets_queried, many=True, context=context).data)
    return {
        "query": queries[0],
        "queries": queries,
        "negatives": serializer_class(result.negatives, many=True, context=context).data,
        "order": result.order,
        "limit": result.limit,
        "min_similarity": min_similarity,
        "max_similarity": max_similarity,
        "ready": result.ready,
        "exact": result.exact,
        "model": result.model_key,
        "scope_size": result.scope_size,
        "results": [
            {"asset": data, "similarity": match.similarity, "distance": match.distance}
            for data, match in zip(assets.data, matches, strict=True)
        ],
    }


class SimilarView(SimilarityAPIView):
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="Images of the same project ordered by DINOv2 cosine similarity",
        parameters=[
            OpenApiParameter("order", OpenApiTypes.STR, enum=["most", "least"], default="most"),
            OpenApiParameter("limit", OpenApiTypes.INT, default=100, description="1 to 100"),
            OpenApiParameter("min_similarity", OpenApiTypes.FLOAT, required=False,
                             description="keep only results with similarity >= this (-1 to 1)"),
            OpenApiParameter("max_similarity", OpenApiTypes.FLOAT, required=False,
                             description="keep only results with similarity <= this (-1 to "
                                         "1): the threshold of least-similar order"),
        ],
        responses={
            200: SimilarResponseSerializer,
            400: OpenApiResponse(description="Bad order/limit, a video, or not embedded yet"),
            404: OpenApiResponse(description="No such asset in your projects"),
        },
    )
    def get(self, request, asset_id: str):
        asset = get_asset_for(request.user, asset_id)
        minimum = parse_min_similarity(request.query_params.get("min_similarity"))
        maximum = parse_max_similarity(request.query_params.get("max_similarity"))
        order, limit = validate(
            request.query_params.get("order", "most"),
            request.query_params.get("limit", similarity_settings.MAX_RESULTS),
        )
        result = find_similar(asset, order=order, limit=limit, user=request.user)
        return Response(similar_answer(request, self, result, minimum, max_similarity=maximum))


@extend_schema_field({"oneOf": [
    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
    {"type": "string", "example": "0.25,0.25,0.5,0.5"}]})
class RegionField(serializers.Field):
    """``[x, y, w, h]`` as JSON, or ``"x,y,w,h"`` from a form: parsed (and refused with
    its reason, code ``bad_region``) by ``search.region.parse_region``."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class SimilarQuerySerializer(serializers.Serializer):
    """Examples and counter-examples of one project, by asset id (any key type), and/or
    an uploaded image (multipart ``image``, see SimilarImageQuerySerializer), or a
    description (``text``, with the text model)."""

    text = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        help_text="a description of what to find (\"cracked casing\"), searched with the text "
                  "model (SIMILARITY['TEXT_MODEL_NAME']); alone: not with images or ids",
    )

    positive = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=MAX_EXAMPLES, required=False,
        default=list,
        help_text="ids of images to look like (their vectors are averaged); required "
                  "unless an image is sent",
    )
    negative = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=MAX_EXAMPLES, required=False,
        default=list, help_text="ids of images not to look like",
    )
    order = serializers.ChoiceField(choices=["most", "least"], default="most")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=100)
    min_similarity = serializers.FloatField(min_value=-1, max_value=1, required=False,
                                            allow_null=True, default=None)
    max_similarity = serializers.FloatField(
        min_value=-1, max_value=1, required=False, allow_null=True, default=None,
        help_text="keep only results with similarity <= this: the threshold of least order")
    asset = serializers.CharField(
        max_length=255, required=False,
        help_text="with `region`: search with that part of this image of the project",
    )
    region = RegionField(
        required=False,
        help_text="[x, y, width, height] in fractions of the image (0 to 1), each side at "
                  "least 32 px of the original: search with that part of `asset` or of "
                  "the uploaded `image` (a form may send \"x,y,w,h\")",
    )


class SimilarImageQuerySerializer(SimilarQuerySerializer):
    """The multipart form of the query: an image file and/or asset ids (schema only)."""

    image = serializers.ImageField(
        required=False,
        help_text="an image from outside the project (JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP, "
                  "TIFF); checked like an upload and not stored: only a preview and its "
                  "vector are kept, for QUERY_IMAGE_HOURS",
    )


def image_summary(query: Any) -> dict:
    """How an outside query image appears in an answer (where an asset would). Its pages
    may not be mounted (an API-only host): their links are then null."""
    summary = {"id": str(query.pk), "label": query.name, "url": image_results_url(query.pk),
               "thumbnail_url": image_preview_url(query.pk)}
    if query.region:
        summary["region"] = list(query.region)
        summary["region_of"] = query.source_asset_id or None
    return summary


class ProjectSimilarView(SimilarityAPIView):
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="Images of a project ranked against an uploaded image and/or examples and "
                "counter-examples",
        description="Ranks by normalise(mean(positives) - 0.5 * mean(negatives)) over their "
                    "unit vectors; an uploaded image (multipart `image`) counts as one more "
                    "positive, or is the query alone. The examples themselves are never "
                    "ranked. The image is checked like an upload (format by content, size "
                    "cap, decompression bombs) and not stored; `query` then describes it "
                    "(`id` a UUID, `url` its results page, `thumbnail_url` its preview). "
                    "With `region`, only that part of the `image`, or of the project's "
                    "image `asset`, is searched with (`query.region`, `query.region_of`).",
        request={"application/json": SimilarQuerySerializer,
                 "multipart/form-data": SimilarImageQuerySerializer},
        responses={
            200: SimilarResponseSerializer,
            400: OpenApiResponse(description="Bad parameters, a refused image file (code "
                                             "'bad_image', naming the reason), a bad region "
                                             "(code 'bad_region'), a video, or not embedded "
                                             "yet"),
            404: OpenApiResponse(description="No such project or asset in your projects"),
            503: OpenApiResponse(description="The image could not be embedded now (code "
                                             "'unavailable': worker did not answer, or the "
                                             "project is changing models)"),
        },
    )
    def post(self, request, project_id: str):
        check_project(request.user, project_id)
        upload = request.FILES.get("image")
        if upload is None and request.data.get("image") not in (None, ""):
            raise ValidationError({"detail": "Send 'image' as a file in a multipart/form-data "
                                             "request.", "code": "bad_image"})
        query = SimilarQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if "text" in data:
            return self._text(request, project_id, data, upload)
        region = _region(request, data)
        if upload is None and not data["positive"] and "asset" not in data:
            raise ValidationError({"positive": ["Send at least one asset id, or an image."],
                                   "code": "invalid"})

        # one query for all of them; an asset of another project: 404, nothing to say
        positives = get_assets_for(request.user, project_id, list(dict.fromkeys(data["positive"])))
        negatives = get_assets_for(request.user, project_id, list(dict.fromkeys(data["negative"])))
        image = None
        if upload is not None:
            image = outside.create_query(request.user, project_id, upload, region=region)
        elif "asset" in data and region is not None:
            asset = get_assets_for(request.user, project_id, [data["asset"]])[0]
            image = outside.create_region_query(request.user, asset, region)
        elif "asset" in data:  # the asset alone: one more example
            positives = get_assets_for(request.user, project_id, [data["asset"]]) + [
                p for p in positives if str(p.pk) != str(data["asset"])]
        if image is not None:
            try:
                result = outside.search(
                    image, positives=positives, negatives=negatives, order=data["order"],
                    limit=data["limit"], user=request.user,
                )
            except SearchError:
                image.delete()  # never shown to anyone: keep nothing of a refused search
                raise
            return Response(similar_answer(request, self, result, data["min_similarity"],
                                           image=image_summary(image),
                                           max_similarity=data["max_similarity"]))
        result = find_similar_to_selection(
            positives, negatives=negatives, order=data["order"], limit=data["limit"],
            user=request.user,
        )
        return Response(similar_answer(request, self, result, data["min_similarity"],
                                       max_similarity=data["max_similarity"]))


    def _text(self, request, project_id: str, data: dict, upload: Any) -> Response:
        if upload is not None or data["positive"] or data["negative"] or "asset" in data:
            raise ValidationError({"text": ["Search with a description alone: not with an "
                                            "image or asset ids in the same query."],
                                   "code": "invalid"})
        result = search_by_text(request.user, project_id, data["text"], order=data["order"],
                                limit=data["limit"])
        return Response(similar_answer(request, self, result, data["min_similarity"],
                                       max_similarity=data["max_similarity"]))


def _region(request: Any, data: dict) -> Region | None:
    """The query's region, parsed (a form sends it as text, or as four ``region`` fields);
    None when there is none. A region needs something to be a region of."""
    raw = data.get("region")
    if hasattr(request.data, "getlist") and len(request.data.getlist("region")) == 4:
        raw = request.data.getlist("region")
    if raw in (None, ""):
        return None
    if "image" not in request.FILES and "asset" not in data:
        raise ValidationError({"region": ["A region needs an `asset` or an `image` to be a "
                                          "region of."], "code": "bad_region"})
    return parse_region(raw)
