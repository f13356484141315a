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
        fields = ["id", "project", "level", "message", "url", "created", "updated", "read"]

    def get_read(self, obj: Notification) -> bool:
        return bool(getattr(obj, "is_read", False))


class NotificationPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class NotificationViewSet(AnswersErrors, viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    permission_classes = [IsActiveUser]
    pagination_class = NotificationPagination  # bounded whatever the host's default

    def get_queryset(self):
        # the read flag comes with each row of the page, never as every id ever read
        queryset = notifications.with_read_flag(
            notifications.visible_notifications(self.request.user), self.request.user)
        if self.request.query_params.get("unread") in ("1", "true"):
            queryset = queryset.filter(is_read=False)
        return queryset

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
