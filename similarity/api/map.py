"""REST API of the project map: ``GET /api/projects/{id}/map/``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from similarity.api.base import SimilarityAPIView
from similarity.host.lookups import check_project
from similarity.insight import map as project_map


class MapView(SimilarityAPIView):
    @extend_schema(
        summary="A project's 2-D map (PCA): columns of asset ids, x, y, group, outlier score",
        responses={
            200: OpenApiResponse(description="count, ids, x, y (0..1), group (index into "
                                             "groups, -1: none), groups, score, method"),
            409: OpenApiResponse(description="Analysis not ready; its progress"),
            404: OpenApiResponse(description="No such project in your projects"),
        },
    )
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        return Response(project_map.payload(project_id, request.user))
