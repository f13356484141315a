"""REST API of the insight stage: duplicate groups and the outlier ranking, paginated.

Both answer 409 with the stage's progress while no complete analysis exists, 404 for a
project the user may not see, and only list assets the access policy lets them see.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from similarity.api.base import SimilarityAPIView, asset_serializer_class
from similarity.host.groups import within_group
from similarity.host.lookups import check_project
from similarity.insight import reading as queries


class InsightPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class DuplicatesView(SimilarityAPIView):
    pagination_class = InsightPagination

    @extend_schema(
        summary="Near-duplicate groups of a project, byte-identical files first, largest first",
        parameters=[
            OpenApiParameter("threshold", OpenApiTypes.FLOAT,
                             default=queries.DEFAULT_THRESHOLD,
                             description=f"cosine similarity, {queries.MIN_THRESHOLD} to 1"),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiResponse(description="count, next, previous, results: groups"),
                   409: OpenApiResponse(description="Analysis not ready; its progress"),
                   404: OpenApiResponse(description="No such project in your projects")},
    )
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        try:
            threshold = queries.parse_threshold(request.query_params.get("threshold"))
        except ValueError as exc:
            raise ValidationError({"threshold": str(exc)}) from exc
        groups = queries.duplicate_groups(project_id, threshold, user=request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(groups, request, view=self)
        queries.fill_members(project_id, page)
        serializer = asset_serializer_class()
        context = {"request": request}
        results = []
        for group in page:
            data = serializer([m.asset for m in group.members], many=True, context=context).data
            results.append({
                "identical": group.identical,
                "size": len(group.members),
                "assets": [
                    {"asset": item, "similarity": member.similarity,
                     "file_size": member.file_size, "width": member.width,
                     "height": member.height}
                    for item, member in zip(data, group.members, strict=True)
                ],
            })
        response = paginator.get_paginated_response(results)
        response.data["threshold"] = threshold
        return response


class OutliersView(SimilarityAPIView):
    pagination_class = InsightPagination

    @extend_schema(
        summary="A project's images, most unusual first (mean cosine distance to the 10 nearest)",
        parameters=[
            OpenApiParameter("group", OpenApiTypes.STR,
                             description="only this group's images (a dataset, for example)"),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiResponse(description="count, next, previous, results"),
                   409: OpenApiResponse(description="Analysis not ready; its progress"),
                   404: OpenApiResponse(description="No such project in your projects")},
    )
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        within = within_group(project_id, request.query_params.get("group"))
        ranking = queries.outliers(project_id, user=request.user, within=within)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ranking, request, view=self)
        ranked = queries.assets_for(list(page))
        data = asset_serializer_class()([item.asset for item in ranked], many=True,
                                        context={"request": request}).data
        return paginator.get_paginated_response(
            [{"asset": item, "score": round(r.score, 6)}
             for item, r in zip(data, ranked, strict=True)]
        )


class InsightStatusView(SimilarityAPIView):
    @extend_schema(summary="Progress of a project's insight stage",
                   responses={200: OpenApiResponse(description="state, ready, analysed, total")})
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        return Response(queries.status(project_id, user=request.user))
