"""API of the bulk actions: list them for a project, run one on a list of asset ids.

``POST /api/projects/{id}/actions/{name}/`` with ``ids`` (a list, or comma-separated),
``params`` (the action's parameters) and optionally ``query`` (``positive`` / ``negative``
asset ids or an outside ``image``: the exports then score each asset against it).
Writes answer ``{"action", "count", "message", ...}``; exports and the ZIP answer the file.
Another project's or a hidden asset is a 404 for the whole request, a write by a viewer
a 403, a bad parameter a 400 naming it; the action runs in one transaction.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from similarity import actions
from similarity.api.base import SimilarityAPIView
from similarity.host.lookups import check_project
from similarity.http import download


class ActionRequestSerializer(serializers.Serializer):
    """Schema of a bulk action request (parsed leniently by the view: lists or text)."""

    ids = serializers.ListField(child=serializers.CharField(), help_text="asset ids")
    params = serializers.DictField(required=False, help_text="the action's parameters")
    query = serializers.DictField(
        required=False,
        help_text="what the results came from: {positive: [ids], negative: [ids], image: uuid}",
    )


def _mapping(value: Any, name: str) -> dict:
    """A dict sent as JSON, or as a JSON string inside a form."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError({"detail": f"{name} must be a JSON object.",
                                   "code": "invalid"}) from exc
    if not isinstance(value, dict):
        raise ValidationError({"detail": f"{name} must be a JSON object.", "code": "invalid"})
    return value


class ActionListView(SimilarityAPIView):
    @extend_schema(summary="Bulk actions this user may run in a project",
                   responses={200: OpenApiResponse(description="[{name, label, needs_edit, "
                                                               "confirm, download, params}]")})
    def get(self, request, project_id: str):
        check_project(request.user, project_id)
        return Response([action.describe(request.user, str(project_id))
                         for action in actions.available_actions(request.user, project_id)])


class ActionRunView(SimilarityAPIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        summary="Run a bulk action (tag, copy, move, export, ZIP, delete) on assets",
        request=ActionRequestSerializer,
        responses={
            200: OpenApiResponse(description="{action, count, message, ...} or the file"),
            400: OpenApiResponse(description="No ids, too many, or a bad parameter"),
            403: OpenApiResponse(description="A write without edit rights on the project"),
            404: OpenApiResponse(description="Unknown action, project or asset (any one id)"),
        },
    )
    def post(self, request, project_id: str, name: str):
        data = request.data
        if not hasattr(data, "get"):
            raise ValidationError({"detail": "Send an object with ids, params and query.",
                                   "code": "invalid"})
        raw_ids = data.get("ids")
        if hasattr(data, "getlist") and len(data.getlist("ids")) > 1:
            raw_ids = data.getlist("ids")  # form fields, one id each; one field: "1,2,3"
        params = _mapping(data.get("params"), "params")
        query = _mapping(data.get("query"), "query")
        result = actions.perform(request.user, project_id, name, actions.parse_ids(raw_ids),
                                 params, query)
        if isinstance(result, actions.ActionOutcome):
            return Response({"action": name, "count": result.count, "message": result.message,
                             **result.data})
        return download(result)
