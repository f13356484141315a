"""API of saved searches: list, create, retrieve, rename, mute, delete, and their matches.

Owner only: another user's saved search is a 404, like one that does not exist. Saving
recomputes the query vector on the server from ``positive``/``negative`` asset ids (through
the access policy) and/or ``image`` (the id of the caller's own outside-image query).
"""

from __future__ import annotations

import uuid

from django.db.models import Count
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from similarity import watch
from similarity.api.base import AnswersErrors, IsActiveUser, asset_serializer_class
from similarity.host.access import filter_visible
from similarity.host.links import saved_search_matches_url, saved_search_run_url
from similarity.models import SavedSearch
from similarity.search.query import MAX_EXAMPLES
from similarity.watch import own_search, visible_matches


class SavedSearchSerializer(serializers.ModelSerializer):
    """A saved search as its owner sees it (never the vector itself)."""

    image = serializers.UUIDField(source="query_image_id", read_only=True, allow_null=True)
    #: The same choice set as the search endpoints' ``order`` (one enum in the schema).
    order = serializers.ChoiceField(choices=["most", "least"], read_only=True)
    effective_threshold = serializers.SerializerMethodField()
    match_count = serializers.SerializerMethodField()
    matches_url = serializers.SerializerMethodField()
    run_url = serializers.SerializerMethodField()

    class Meta:
        model = SavedSearch
        fields = ["id", "project_id", "name", "positive_ids", "negative_ids", "image", "text",
                  "order",
                  "threshold", "effective_threshold", "muted", "model_key", "match_count",
                  "matches_url", "run_url", "created", "updated"]
        read_only_fields = fields

    def get_effective_threshold(self, obj: SavedSearch) -> float:
        return watch.threshold_of(obj)

    def get_match_count(self, obj: SavedSearch) -> int:
        total = getattr(obj, "match_total", None)  # annotated by the list: one query
        return obj.matches.count() if total is None else total

    def get_matches_url(self, obj: SavedSearch) -> str | None:
        return saved_search_matches_url(obj.pk)

    def get_run_url(self, obj: SavedSearch) -> str | None:
        return saved_search_run_url(obj)


class SavedSearchCreateSerializer(serializers.Serializer):
    project_id = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=watch.NAME_MAX_LENGTH)
    positive = serializers.ListField(child=serializers.CharField(max_length=255),
                                     max_length=MAX_EXAMPLES, required=False, default=list)
    negative = serializers.ListField(child=serializers.CharField(max_length=255),
                                     max_length=MAX_EXAMPLES, required=False, default=list)
    image = serializers.UUIDField(required=False, allow_null=True, default=None)
    text = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, default="",
        help_text="a description to watch with the text model, instead of images")
    order = serializers.ChoiceField(choices=["most", "least"], default="most")
    threshold = serializers.FloatField(min_value=-1, max_value=1, required=False,
                                       allow_null=True, default=None)


class SavedSearchUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=watch.NAME_MAX_LENGTH, required=False)
    muted = serializers.BooleanField(required=False)


class MatchesPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="saved search id")


@extend_schema_view(retrieve=extend_schema(parameters=[ID]),
                    partial_update=extend_schema(parameters=[ID]),
                    destroy=extend_schema(parameters=[ID]),
                    matches=extend_schema(parameters=[ID]))
class SavedSearchViewSet(AnswersErrors, viewsets.ViewSet):
    """``/saved-searches/``: the caller's own saved searches (``?project=`` narrows)."""

    permission_classes = [IsActiveUser]

    @extend_schema(
        summary="Your saved searches",
        parameters=[OpenApiParameter("project", str, required=False)],
        responses=SavedSearchSerializer(many=True),
    )
    def list(self, request):
        queryset = filter_visible(SavedSearch.objects.filter(owner=request.user), request.user)
        project = request.query_params.get("project", "")
        if project:
            if "\x00" in project or len(project) > 255:  # text columns cannot hold NUL
                raise ValidationError({"project": "Not a project id."})
            queryset = queryset.filter(project_id=project)
        queryset = queryset.annotate(match_total=Count("matches"))
        return Response(SavedSearchSerializer(queryset, many=True).data)

    @extend_schema(
        summary="Save a search that watches new uploads",
        request=SavedSearchCreateSerializer,
        responses={201: SavedSearchSerializer,
                   400: OpenApiResponse(description="Bad name (or taken), nothing to save, "
                                                    "not embedded"),
                   404: OpenApiResponse(description="No such project, asset or image of yours")},
    )
    def create(self, request):
        data = SavedSearchCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        search = watch.save_search(
            request.user, values["project_id"], name=values["name"],
            positive=values["positive"], negative=values["negative"],
            image=values["image"], text=values["text"] or None, order=values["order"],
            threshold=values["threshold"],
        )
        return Response(SavedSearchSerializer(search).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="One of your saved searches", responses=SavedSearchSerializer)
    def retrieve(self, request, pk=None):
        return Response(SavedSearchSerializer(own_search(request.user, pk)).data)

    @extend_schema(summary="Rename, mute or unmute a saved search",
                   request=SavedSearchUpdateSerializer, responses=SavedSearchSerializer)
    def partial_update(self, request, pk=None):
        search = own_search(request.user, pk)
        data = SavedSearchUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "name" in data.validated_data:
            watch.rename(search, data.validated_data["name"])
        if "muted" in data.validated_data:
            search.muted = data.validated_data["muted"]
            search.save(update_fields=["muted", "updated"])
        return Response(SavedSearchSerializer(search).data)

    @extend_schema(summary="Delete a saved search", responses={204: None})
    def destroy(self, request, pk=None):
        own_search(request.user, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="New images that matched a saved search (best first)",
        parameters=[OpenApiParameter("batch", str, required=False,
                                     description="only the matches of this batch")],
        responses=OpenApiResponse(description="{count, next, previous, results: [{asset, similarity}]}"),
    )
    @action(detail=True, methods=["get"])
    def matches(self, request, pk=None):
        search = own_search(request.user, pk)
        batch = None
        if request.query_params.get("batch"):
            try:
                batch = uuid.UUID(request.query_params["batch"])
            except ValueError as exc:
                raise NotFound() from exc
        found = visible_matches(request.user, search, batch)
        paginator = MatchesPagination()
        page = paginator.paginate_queryset(found, request, view=self)
        assets = asset_serializer_class()([m.asset for m in page], many=True,
                                          context={"request": request, "view": self})
        return paginator.get_paginated_response([
            {"asset": data, "similarity": match.similarity}
            for data, match in zip(assets.data, page, strict=True)
        ])
