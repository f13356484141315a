"""API of curation: diverse picks, coverage of labelled datasets, leakage between two.

Permission-filtered like search: a project the user may not see is a 404, and only the
images the access policy lets them see take part. Reads only: acting on the answer is a
bulk action (``/actions/``), which needs an editor.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from similarity import curate
from similarity.api.base import SearchThrottle, SimilarityAPIView, asset_serializer_class
from similarity.host.lookups import check_project
from similarity.insight import leakage as leaks


class CuratePagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = curate.MAX_COUNT


class DiverseQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(
        min_value=1, max_value=curate.MAX_COUNT, default=curate.DEFAULT_COUNT,
        help_text=f"images to pick, 1 to {curate.MAX_COUNT}")
    dataset = serializers.CharField(max_length=255, required=False, allow_null=True, default=None,
                                    help_text="pick among this dataset's images only")
    ids = serializers.ListField(child=serializers.CharField(max_length=255), required=False,
                                allow_null=True, default=None, max_length=10 * curate.MAX_COUNT,
                                help_text="pick among these images only (a selection)")
    exclude_similar_to = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, default=list,
        max_length=100,
        help_text="datasets whose images the picks keep away from (what is labelled already)")


def assets_data(request: Any, view: Any, assets: list[Any]) -> list[dict]:
    serializer = asset_serializer_class()
    return list(serializer(assets, many=True,
                           context=view.get_renderer_context() | {"request": request}).data)


def diverse_answer(request: Any, view: Any, project_id: str, found: curate.Diverse) -> dict:
    picks = curate.fill_assets(project_id, found.picks)
    data = assets_data(request, view, [pick.asset for pick in picks])
    return {
        "count": len(picks), "candidates": found.candidates, "reference": found.reference,
        "reference_datasets": found.reference_groups, "exact": found.exact,
        "results": [{"asset": item, "rank": rank, "distance": pick.distance}
                    for rank, (item, pick) in enumerate(zip(data, picks, strict=True), 1)],
    }


class DiverseView(SimilarityAPIView):
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="Pick N diverse images (greedy farthest-point, k-center)",
        description="Deterministic: the start is the most typical image (highest cosine to "
                    "the set's mean); each next pick is the image farthest from every earlier "
                    "pick (and from `exclude_similar_to`'s images). `distance` is the cosine "
                    "distance of a pick to its nearest earlier pick or reference image "
                    "(null for the start). Exact, no sampling.",
        request=DiverseQuerySerializer,
        responses={200: OpenApiResponse(description="count, candidates, reference, exact, "
                                                    "results: asset, rank, distance"),
                   400: OpenApiResponse(description="A bad count (1 to 1,000) or dataset")},
    )
    def post(self, request, project_id: str):
        check_project(request.user, project_id)
        query = DiverseQuerySerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        found = curate.pick_diverse(
            project_id, data["count"], user=request.user, group=data["dataset"],
            ids=data["ids"], exclude_similar_to=data["exclude_similar_to"])
        return Response(diverse_answer(request, self, project_id, found))


class CoverageView(SimilarityAPIView):
    pagination_class = CuratePagination
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="A dataset's images ranked by similarity to their nearest image in the "
                "reference datasets, least covered first",
        parameters=[
            OpenApiParameter("candidates", OpenApiTypes.STR, required=True,
                             description="the dataset to rank (say, incoming)"),
            OpenApiParameter("reference", OpenApiTypes.STR, required=True, many=True,
                             description="the labelled dataset(s); repeat for several"),
            OpenApiParameter("diverse", OpenApiTypes.INT, required=False,
                             description="instead: pick this many diverse images among the "
                                         "candidates, kept away from the reference"),
            OpenApiParameter("limit", OpenApiTypes.INT), OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiResponse(description="count, next, previous, results: asset, "
                                                    "similarity, nearest"),
                   400: OpenApiResponse(description="A bad or missing dataset")},
    )
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        params = request.query_params
        candidates, references = params.get("candidates"), params.getlist("reference")
        if params.get("diverse") not in (None, ""):
            count = curate.parse_count(params.get("diverse"), field="diverse")
            found = curate.diverse_uncovered(project_id, candidates, references, count,
                                             user=request.user)
            return Response(diverse_answer(request, self, project_id, found))
        ranked = curate.rank_coverage(project_id, candidates, references, user=request.user)
        paginator = self.pagination_class()
        limit = paginator.get_limit(request)
        offset = paginator.get_offset(request)
        items = curate.fill_assets(project_id, ranked.items(offset, offset + limit),
                                   "asset_id", "nearest_asset_id") if len(ranked) else []
        data = assets_data(request, self, [item.asset for item in items])
        nearest = assets_data(request, self, [item.nearest_asset for item in items])
        paginator.paginate_queryset(range(len(ranked)), request, view=self)
        response = paginator.get_paginated_response([
            {"asset": a, "similarity": item.similarity, "nearest": n}
            for a, n, item in zip(data, nearest, items, strict=True)])
        response.data["reference_size"] = len(ranked.reference)
        return response


class LeakageView(SimilarityAPIView):
    pagination_class = CuratePagination
    throttle_classes = [SearchThrottle]
    throttle_scope = "similarity_search"

    @extend_schema(
        summary="Pairs of images across two datasets at or above a similarity (leakage)",
        description="Byte-identical files first, then near-duplicates by similarity. Read "
                    "from the insight stage's neighbour lists (409 until the first analysis). "
                    "At most 10,000 pairs (`truncated` says when there are more); "
                    "`a_pending`/`b_pending` count images not analysed yet; `behind`: the "
                    "analysis has not taken in the latest changes yet.",
        parameters=[
            OpenApiParameter("a", OpenApiTypes.STR, required=True, description="a dataset (train)"),
            OpenApiParameter("b", OpenApiTypes.STR, required=True, description="another (test)"),
            OpenApiParameter("threshold", OpenApiTypes.FLOAT, default=leaks.DEFAULT_THRESHOLD,
                             description=f"cosine similarity, {leaks.MIN_THRESHOLD} to 1"),
            OpenApiParameter("limit", OpenApiTypes.INT), OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiResponse(description="count, identical, b_copies, results: a, b, "
                                                    "similarity, identical"),
                   409: OpenApiResponse(description="Analysis not ready; its progress")},
    )
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        params = request.query_params
        threshold = leaks.parse_threshold(params.get("threshold"))
        found = leaks.leakage(project_id, params.get("a"), params.get("b"), threshold,
                              user=request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(found.pairs, request, view=self)
        page = curate.fill_assets(project_id, page, "a_asset_id", "b_asset_id")
        a_data = assets_data(request, self, [pair.a_asset for pair in page])
        b_data = assets_data(request, self, [pair.b_asset for pair in page])
        response = paginator.get_paginated_response([
            {"a": a, "b": b, "similarity": pair.similarity, "identical": pair.identical}
            for a, b, pair in zip(a_data, b_data, page, strict=True)])
        response.data.update({"threshold": found.threshold, "identical": found.identical,
                              "b_copies": found.b_copies, "a_images": found.a_size,
                              "b_images": found.b_size, "a_pending": found.a_pending,
                              "b_pending": found.b_pending, "truncated": found.truncated,
                              "behind": found.behind})
        return response
