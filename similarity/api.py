"""REST API: similar assets, project readiness and re-index, notifications.

Permissions are explicit on every view (never the host's DRF defaults) and go through
the configured access policy; another project's asset or project answers 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from similarity import links, notifications, readiness, tasks
from similarity.conf import similarity_settings
from similarity.gaps import trim
from similarity.models import Notification, ProjectReadiness
from similarity.search import SearchError, find_similar, find_similar_to_selection, validate
from similarity.shortcuts import can_edit, check_project, get_asset_for, get_assets_for


class SearchThrottle(ScopedRateThrottle):
    """Works without the host configuring a rate for our scope."""

    scope_attr = "throttle_scope"

    def get_rate(self):
        rates = self.THROTTLE_RATES or {}
        if self.scope in rates:
            return rates[self.scope]
        return similarity_settings.SEARCH_THROTTLE_RATE


class IsActiveUser(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


class AssetSummarySerializer(serializers.Serializer):
    id = serializers.ReadOnlyField(source="pk")
    label = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_label(self, obj: Any) -> str:
        return links.asset_label(obj)

    def get_url(self, obj: Any) -> str:
        return links.asset_url(obj)

    def get_thumbnail_url(self, obj: Any) -> str:
        return links.thumbnail_url(obj)


def asset_serializer_class() -> type[serializers.BaseSerializer]:
    return similarity_settings.ASSET_SERIALIZER or AssetSummarySerializer


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
    order = serializers.ChoiceField(choices=["most", "least"])
    limit = serializers.IntegerField()
    ready = serializers.BooleanField()
    exact = serializers.BooleanField()
    model = serializers.CharField()
    scope_size = serializers.IntegerField()
    results = MatchSerializer(many=True)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class ProjectKeyField(serializers.Field):
    """A scope id as the host's own project key (an integer stays an integer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> Any:
        return readiness.public_project_key(value)


class ReadinessSerializer(serializers.ModelSerializer):
    project = ProjectKeyField(source="project_id")
    ready = serializers.SerializerMethodField()
    percent = serializers.IntegerField()
    model = serializers.CharField(source="model_key")
    serving_model = serializers.CharField(source="active_model_key")

    class Meta:
        model = ProjectReadiness
        fields = [
            "project", "state", "ready", "total", "embedded", "pending", "failed", "percent",
            "model", "serving_model", "error", "updated",
        ]

    def get_ready(self, obj: ProjectReadiness) -> bool:
        return obj.state == ProjectReadiness.State.READY


class NotificationSerializer(serializers.ModelSerializer):
    project = ProjectKeyField(source="project_id")
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "project", "level", "message", "url", "created", "read"]

    def get_read(self, obj: Notification) -> bool:
        return obj.pk in self.context.get("read_ids", set())


def parse_min_similarity(raw: Any) -> float | None:
    """``min_similarity`` as a user sent it: a cosine from -1 to 1, or absent."""
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not -1.0 <= value <= 1.0:  # NaN fails too
        raise ValidationError({"detail": "min_similarity must be a number from -1 to 1.",
                               "code": "invalid"})
    return value


def similar_answer(request: Any, view: APIView, result: Any, min_similarity: float | None,
                   image: dict | None = None) -> dict:
    """The one response shape of every similarity query (GET by asset, POST by project).

    ``image``: the summary of an outside query image, which leads ``queries``.
    """
    matches = trim(result.matches, min_similarity)
    serializer_class = asset_serializer_class()
    context = view.get_renderer_context() | {"request": request}
    # One serializer over all result assets: building one per result cost ~0.7 ms each.
    assets = serializer_class([m.asset for m in matches], many=True, context=context)
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
        "ready": result.ready,
        "exact": result.exact,
        "model": result.model_key,
        "scope_size": result.scope_size,
        "results": [
            {"asset": data, "similarity": match.similarity, "distance": match.distance}
            for data, match in zip(assets.data, matches, strict=True)
        ],
    }


class SimilarView(APIView):
    permission_classes = [IsActiveUser]
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="Images of the same project ordered by DINOv2 cosine similarity",
        parameters=[
            OpenApiParameter("order", OpenApiTypes.STR, enum=["most", "least"], default="most"),
            OpenApiParameter("limit", OpenApiTypes.INT, default=100, description="1 to 100"),
            OpenApiParameter("min_similarity", OpenApiTypes.FLOAT, required=False,
                             description="keep only results with similarity >= this (-1 to 1)"),
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
        try:
            order, limit = validate(
                request.query_params.get("order", "most"),
                request.query_params.get("limit", similarity_settings.MAX_RESULTS),
            )
            result = find_similar(asset, order=order, limit=limit, user=request.user)
        except SearchError as exc:
            raise ValidationError({"detail": str(exc), "code": exc.code}) from exc
        return Response(similar_answer(request, self, result, minimum))


class SimilarQuerySerializer(serializers.Serializer):
    """Examples and counter-examples of one project, by asset id (any key type), and/or
    an uploaded image (multipart ``image``, see SimilarImageQuerySerializer)."""

    positive = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=100, required=False,
        default=list,
        help_text="ids of images to look like (their vectors are averaged); required "
                  "unless an image is sent",
    )
    negative = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=100, required=False,
        default=list, help_text="ids of images not to look like",
    )
    order = serializers.ChoiceField(choices=["most", "least"], default="most")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=100)
    min_similarity = serializers.FloatField(min_value=-1, max_value=1, required=False,
                                            allow_null=True, default=None)


class SimilarImageQuerySerializer(SimilarQuerySerializer):
    """The multipart form of the query: an image file and/or asset ids (schema only)."""

    image = serializers.ImageField(
        required=False,
        help_text="an image from outside the project (JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP, "
                  "TIFF); checked like an upload and not stored: only a preview and its "
                  "vector are kept, for QUERY_IMAGE_HOURS",
    )


def image_summary(query: Any) -> dict:
    """How an outside query image appears in an answer (where an asset would)."""
    from similarity.query_views import preview_url, results_url

    return {"id": str(query.pk), "label": query.name, "url": results_url(query),
            "thumbnail_url": preview_url(query)}


class ProjectSimilarView(APIView):
    permission_classes = [IsActiveUser]
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
                    "(`id` a UUID, `url` its results page, `thumbnail_url` its preview).",
        request={"application/json": SimilarQuerySerializer,
                 "multipart/form-data": SimilarImageQuerySerializer},
        responses={
            200: SimilarResponseSerializer,
            400: OpenApiResponse(description="Bad parameters, a refused image file (code "
                                             "'bad_image', naming the reason), a video, or "
                                             "not embedded yet"),
            404: OpenApiResponse(description="No such project or asset in your projects"),
            503: OpenApiResponse(description="The image could not be embedded now (code "
                                             "'unavailable': worker did not answer, or the "
                                             "project is changing models)"),
        },
    )
    def post(self, request, project_id: str):
        from similarity import query_images

        check_project(request.user, project_id)
        upload = request.FILES.get("image")
        if upload is None and request.data.get("image") not in (None, ""):
            raise ValidationError({"detail": "Send 'image' as a file in a multipart/form-data "
                                             "request.", "code": "bad_image"})
        query = SimilarQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if upload is None and not data["positive"]:
            raise ValidationError({"positive": ["Send at least one asset id, or an image."],
                                   "code": "invalid"})

        # one query for all of them; an asset of another project: 404, nothing to say
        positives = get_assets_for(request.user, project_id, list(dict.fromkeys(data["positive"])))
        negatives = get_assets_for(request.user, project_id, list(dict.fromkeys(data["negative"])))
        if upload is not None:
            try:
                image = query_images.create_query(request.user, project_id, upload)
            except query_images.QueryImageError as exc:
                return Response({"detail": str(exc), "code": exc.code}, status=exc.status)
            try:
                result = query_images.search(
                    image, positives=positives, negatives=negatives, order=data["order"],
                    limit=data["limit"], user=request.user,
                )
            except SearchError as exc:
                image.delete()  # never shown to anyone: keep nothing of a refused search
                raise ValidationError({"detail": str(exc), "code": exc.code}) from exc
            return Response(similar_answer(request, self, result, data["min_similarity"],
                                           image=image_summary(image)))
        try:
            result = find_similar_to_selection(
                positives, negatives=negatives, order=data["order"], limit=data["limit"],
                user=request.user,
            )
        except SearchError as exc:
            raise ValidationError({"detail": str(exc), "code": exc.code}) from exc
        return Response(similar_answer(request, self, result, data["min_similarity"]))


class ProjectReadinessView(APIView):
    permission_classes = [IsActiveUser]

    @extend_schema(summary="Similarity readiness of a project", responses=ReadinessSerializer)
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        return Response(ReadinessSerializer(readiness.get_readiness(project_id)).data)


class ProjectReindexView(APIView):
    permission_classes = [IsActiveUser]

    @extend_schema(
        summary="Embed a project's missing images and retry failed ones",
        request=None,
        responses={202: ReadinessSerializer},
    )
    def post(self, request, project_id: str):
        check_project(request.user, project_id)
        if not can_edit(request.user, project_id):
            raise PermissionDenied("Only the project's editors can re-index it.")
        tasks.reindex_project(project_id)
        data = ReadinessSerializer(readiness.get_readiness(project_id)).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class NotificationPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    permission_classes = [IsActiveUser]
    pagination_class = NotificationPagination  # bounded whatever the host's default

    def get_queryset(self):
        queryset = notifications.visible_notifications(self.request.user)
        if self.request.query_params.get("unread") in ("1", "true"):
            queryset = queryset.exclude(read_by=self.request.user)
        return queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self.request, "user", None) and self.request.user.is_authenticated:
            context["read_ids"] = set(
                self.request.user.similarity_notifications_read.values_list("pk", flat=True)
            )
        return context

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        notifications.mark_read(request.user, [notification.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: OpenApiResponse(description="{'marked': n}")})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked": notifications.mark_read(request.user)})
