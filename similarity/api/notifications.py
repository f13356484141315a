"""API of notifications: the caller's, newest first; mark one or all read."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from similarity.api.base import AnswersErrors, IsActiveUser, ProjectKeyField
from similarity.embedding import notifications
from similarity.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    project = ProjectKeyField(source="project_id")
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "project", "level", "message", "url", "created", "read"]

    def get_read(self, obj: Notification) -> bool:
        return obj.pk in self.context.get("read_ids", set())


class NotificationPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class NotificationViewSet(AnswersErrors, viewsets.ReadOnlyModelViewSet):
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
