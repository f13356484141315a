"""REST API of the project map: ``GET /api/projects/{id}/map/``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from similarity import insight_queries as queries
from similarity import map as project_map
from similarity.api import IsActiveUser
from similarity.shortcuts import check_project


class MapView(APIView):
    permission_classes = [IsActiveUser]

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
        try:
            return Response(project_map.payload(project_id, request.user))
        except queries.InsightNotReady as exc:
            return Response({"detail": str(exc), "insight": exc.status},
                            status=status.HTTP_409_CONFLICT)
