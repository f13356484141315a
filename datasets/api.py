"""REST API for projects, datasets and assets. Every queryset is scoped to the caller."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from datasets import access, editing
from datasets.deletion import delete_dataset
from datasets.models import Asset, Dataset, Project
from datasets.queries import QueryError, filter_assets
from datasets.serving import serve_file
from datasets.uploads import UploadRejected, create_asset


def project_id_of(obj: Any) -> int:
    if isinstance(obj, Project):
        return obj.pk
    if isinstance(obj, Dataset):
        return obj.project_id
    return obj.dataset.project_id


class IsProjectMember(permissions.BasePermission):
    """Members read; editors and admins write. Explicit on every view: deny by default."""

    message = "Only the project's editors and admins can change it."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return access.can_edit(request.user, project_id_of(obj))


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created", "role"]

    def get_role(self, obj: Project) -> str | None:
        return access.role_in(self.context["request"].user, obj.pk)


class DatasetSerializer(serializers.ModelSerializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.none())

    class Meta:
        model = Dataset
        fields = ["id", "project", "name", "created"]

    def get_fields(self):
        fields = super().get_fields()
        # Only projects the caller can edit are valid targets; others read as "not found".
        fields["project"].queryset = access.editable_projects(self.context["request"].user)
        if self.instance is not None:
            fields["project"].read_only = True
        return fields

    def validate(self, attrs):
        project = attrs.get("project") or getattr(self.instance, "project", None)
        name = attrs.get("name", getattr(self.instance, "name", ""))
        clash = Dataset.objects.filter(project=project, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError({"name": f"This project already has a dataset named {name!r}."})
        return attrs


class TagsField(serializers.ListField):
    """The asset's tags by name; a PATCH with ``tags`` makes them exactly these."""

    child = serializers.CharField(max_length=editing.TAG_MAX_LENGTH)

    def get_attribute(self, instance: Asset) -> list[str]:
        return [tag.name for tag in instance.tags.all()]  # prefetched by the viewset


class AssetSerializer(serializers.ModelSerializer):
    """An asset as search answers show it (similarity's ASSET_SERIALIZER): no relations, so
    100 results cost no query each."""

    project = serializers.IntegerField(source="dataset.project_id", read_only=True)
    url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = [
            "id", "dataset", "project", "original_filename", "kind", "content_type",
            "size_bytes", "width", "height", "metadata", "created", "url", "file_url",
            "thumbnail_url",
        ]
        read_only_fields = [
            "dataset", "original_filename", "kind", "content_type", "size_bytes", "width",
            "height", "created",
        ]

    def get_url(self, obj: Asset) -> str:
        return reverse("datasets:asset", args=[obj.pk])

    def get_file_url(self, obj: Asset) -> str:
        return reverse("asset-file", args=[obj.pk])

    def get_thumbnail_url(self, obj: Asset) -> str | None:
        return reverse("asset-thumbnail", args=[obj.pk]) if obj.thumbnail else None

    def validate_metadata(self, value):
        try:
            return editing.clean_metadata(value)
        except editing.EditError as exc:
            raise ValidationError(str(exc)) from exc



class AssetDetailSerializer(AssetSerializer):
    """``/api/assets/``: the asset with its tags, which a PATCH may replace (and metadata)."""

    tags = TagsField(required=False, max_length=editing.MAX_TAGS,
                     help_text="the project's tags on this image; PATCH replaces them")

    class Meta(AssetSerializer.Meta):
        fields = [*AssetSerializer.Meta.fields, "tags"]

    def validate_tags(self, value):
        try:
            return list(dict.fromkeys(editing.clean_tag(name) for name in value))
        except editing.EditError as exc:
            raise ValidationError(str(exc)) from exc

    def update(self, instance: Asset, validated_data: dict) -> Asset:
        tags = validated_data.pop("tags", None)
        instance = super().update(instance, validated_data)
        if tags is not None:
            editing.set_tags(instance, tags)
            if hasattr(instance, "_prefetched_objects_cache"):
                instance._prefetched_objects_cache.pop("tags", None)
        return instance


class AssetUploadSerializer(serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.none())
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    metadata = serializers.JSONField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        user = self.context["request"].user
        fields["dataset"].queryset = Dataset.objects.filter(
            project__in=access.editable_projects(user)
        )
        return fields

    def validate_metadata(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValidationError("Metadata must be a JSON object.") from exc
        try:
            return editing.clean_metadata(value)
        except editing.EditError as exc:
            raise ValidationError(str(exc)) from exc


@extend_schema_view(list=extend_schema(summary="Projects you are a member of"))
class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    permission_classes = [IsProjectMember]

    def get_queryset(self):
        return access.visible_projects(self.request.user).order_by("name", "id")


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("project", OpenApiTypes.INT, description="Project id")]
    )
)
class DatasetViewSet(viewsets.ModelViewSet):
    serializer_class = DatasetSerializer
    permission_classes = [IsProjectMember]

    def get_queryset(self):
        queryset = access.visible_datasets(self.request.user).order_by("name", "id")
        project = self.request.query_params.get("project")
        if project is not None:
            if not project.isdigit():
                raise ValidationError({"project": "Must be a project id."})
            queryset = queryset.filter(project_id=int(project))
        return queryset

    def perform_destroy(self, instance):
        delete_dataset(instance)  # a few statements whatever its size; files go after commit


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("dataset", OpenApiTypes.INT, description="Dataset id"),
            OpenApiParameter("search", OpenApiTypes.STR, description="Filename contains"),
            OpenApiParameter(
                "metadata",
                OpenApiTypes.STR,
                many=True,
                description="key:value on the metadata JSON; repeat for AND",
            ),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=["image", "video"]),
        ]
    ),
    create=extend_schema(request={"multipart/form-data": AssetUploadSerializer}),
)
class AssetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AssetDetailSerializer
    permission_classes = [IsProjectMember]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_throttles(self):
        if self.action == "create":
            self.throttle_scope = "uploads"
            return [ScopedRateThrottle()]
        return super().get_throttles()

    def get_serializer_class(self):
        return AssetUploadSerializer if self.action == "create" else AssetDetailSerializer

    def get_queryset(self):
        params = self.request.query_params
        queryset = access.visible_assets(self.request.user).select_related("dataset") \
            .prefetch_related("tags")
        dataset = params.get("dataset")
        if dataset is not None:
            if not dataset.isdigit():
                raise ValidationError({"dataset": "Must be a dataset id."})
            queryset = queryset.filter(dataset_id=int(dataset))
        kind = params.get("kind")
        if kind is not None:
            if kind not in Asset.Kind.values:
                raise ValidationError({"kind": "Must be image or video."})
            queryset = queryset.filter(kind=kind)
        try:
            queryset = filter_assets(
                queryset,
                search=params.get("search", ""),
                metadata=" ".join(_quote(term) for term in params.getlist("metadata")),
                separators=":=",
            )
        except QueryError as exc:
            raise ValidationError({exc.field: str(exc)}) from exc
        return queryset.order_by("-id")

    @extend_schema(summary="Download the original file", responses={(200, "*/*"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        asset = self.get_object()
        download = asset.original_filename if request.query_params.get("download") else None
        return serve_file(asset.file, asset.content_type, download_name=download)

    @extend_schema(summary="The WebP thumbnail", responses={(200, "image/webp"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        return serve_file(self.get_object().thumbnail, "image/webp")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        files = request.FILES.getlist("file")
        if len(files) > 1:
            raise ValidationError(
                {"file": f"Send one file per request (this one has {len(files)}); the page's "
                         "upload area sends several files as parallel requests."}
            )
        data = serializer.validated_data
        try:
            asset = create_asset(
                data["dataset"], data["file"], user=request.user, metadata=data.get("metadata")
            )
        except UploadRejected as exc:
            raise ValidationError({"file": [f"{exc.filename}: {exc.reason}"]}) from exc
        body = AssetDetailSerializer(asset, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)


def _quote(term: str) -> str:
    """Keep a metadata term whole through the shell-like parser (values may hold spaces)."""
    return "'" + term.replace("'", "'\"'\"'") + "'"
