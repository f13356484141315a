"""API of a scope's readiness: its state, and re-indexing it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from similarity.api.base import ProjectKeyField, SimilarityAPIView
from similarity.embedding import readiness
from similarity.embedding.scheduling import reindex_project
from similarity.host.lookups import can_edit, check_project
from similarity.models import ProjectReadiness


class ReadinessSerializer(serializers.ModelSerializer):
    project = ProjectKeyField(source="project_id")
    ready = serializers.SerializerMethodField()
    percent = serializers.IntegerField()
    model = serializers.CharField(source="model_key")
    serving_model = serializers.CharField(source="active_model_key")
    searchable = serializers.SerializerMethodField()
    unavailable_reason = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField(
        help_text="the text model's part (text search), null when none is configured: "
                  "model, state, total, embedded, pending, failed, percent, searchable, "
                  "error_summary")

    class Meta:
        model = ProjectReadiness
        fields = [
            "project", "state", "ready", "total", "embedded", "pending", "failed", "percent",
            "model", "serving_model", "searchable", "unavailable_reason", "error", "updated",
            "text",
        ]

    def get_ready(self, obj: ProjectReadiness) -> bool:
        return obj.state == ProjectReadiness.State.READY

    def get_searchable(self, obj: ProjectReadiness) -> bool:
        return not readiness.unavailable_reason(obj)

    def get_unavailable_reason(self, obj: ProjectReadiness) -> str:
        return readiness.unavailable_reason(obj)

    @extend_schema_field({"type": "object", "nullable": True})
    def get_text(self, obj: ProjectReadiness) -> dict | None:
        request = self.context.get("request")
        return readiness.text_dict(readiness.text_readiness(obj, getattr(request, "user", None)))


class ProjectReadinessView(SimilarityAPIView):
    @extend_schema(summary="Similarity readiness of a project", responses=ReadinessSerializer)
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        state = readiness.readiness_for(project_id, request.user)
        return Response(ReadinessSerializer(state, context={"request": request}).data)


class ProjectReindexView(SimilarityAPIView):
    @extend_schema(
        summary="Embed a project's missing images and retry failed ones",
        request=None,
        responses={202: ReadinessSerializer},
    )
    def post(self, request, project_id: str):
        check_project(request.user, project_id)
        if not can_edit(request.user, project_id):
            raise PermissionDenied("Only the project's editors can re-index it.")
        reindex_project(project_id)
        data = ReadinessSerializer(readiness.readiness_for(project_id, request.user),
                                   context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)
