"""What every API view shares: explicit permissions, the app's errors as answers, the
asset summary, the search throttle.

Permissions are explicit on every view (never the host's DRF defaults, which may be
``AllowAny``) and go through the configured access policy; what the user may not see is a
404, like what does not exist.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from similarity.api.schema import AutoSchema
from similarity.conf import similarity_settings
from similarity.errors import NotFound, SimilarityError
from similarity.host.links import asset_label, asset_url, thumbnail_url
from similarity.host.scopes import public_project_key
from similarity.http import SearchThrottle as SearchThrottle  # re-exported: the API uses it


class IsActiveUser(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


def error_body(exc: SimilarityError) -> dict[str, Any]:
    """The body of an answer to a refused request: ``detail`` for people, ``code`` for
    scripts, and what the error adds (the insight stage's progress, say)."""
    return {"detail": str(exc), "code": exc.code, **exc.extra()}


class AnswersErrors:
    """The app's errors as API answers: NotFound is DRF's 404, every other
    SimilarityError its own status with ``error_body``."""

    schema = AutoSchema()  # documents those answers, whatever the host's default schema

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, NotFound):
            exc = exceptions.NotFound(str(exc))
        elif isinstance(exc, SimilarityError):
            return Response(error_body(exc), status=exc.http_status, headers=exc.headers())
        return super().handle_exception(exc)


class SimilarityAPIView(AnswersErrors, APIView):
    """An API view of the app: active users only, errors answered."""

    permission_classes = [IsActiveUser]


class AssetSummarySerializer(serializers.Serializer):
    id = serializers.ReadOnlyField(source="pk")
    label = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_label(self, obj: Any) -> str:
        return asset_label(obj)

    def get_url(self, obj: Any) -> str:
        return asset_url(obj)

    def get_thumbnail_url(self, obj: Any) -> str:
        return thumbnail_url(obj)


def asset_serializer_class() -> type[serializers.BaseSerializer]:
    return similarity_settings.ASSET_SERIALIZER or AssetSummarySerializer


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class ProjectKeyField(serializers.Field):
    """A scope id as the host's own project key (an integer stays an integer)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> Any:
        return public_project_key(value)
