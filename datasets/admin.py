from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from datasets.models import Asset, Dataset, Project, ProjectMembership
from similarity.admin import SimilarityAssetAdminMixin


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created"]
    list_filter = ["project"]
    search_fields = ["name", "project__name"]
    list_select_related = ["project"]


@admin.register(Asset)
class AssetAdmin(SimilarityAssetAdminMixin, admin.ModelAdmin):
    # Few, narrow columns: the list fits a 1366 px screen beside the admin's sidebar.
    list_display = ["thumb", "original_filename", "dataset", "dimensions",
                    "embedding_status", "similar_link", "uploaded"]
    list_display_links = ["thumb", "original_filename"]
    list_filter = ["kind", "dataset__project", "dataset"]
    search_fields = ["original_filename"]
    list_select_related = ["dataset"]
    readonly_fields = ["thumb", "file", "original_filename", "kind", "content_type", "size_bytes",
                       "width", "height", "thumbnail", "uploaded_by", "created"]
    fields = [*readonly_fields[:1], "dataset", "metadata", *readonly_fields[1:]]
    show_full_result_count = False  # no COUNT(*) over 100k assets on every page

    @admin.display(description="preview")
    def thumb(self, obj):
        if not obj.thumbnail:
            return "▶" if obj.kind == Asset.Kind.VIDEO else "—"
        url = reverse("datasets:asset-thumbnail", args=[obj.pk])
        return format_html('<img src="{}" alt="{}" width="48" height="48" style="object-fit:cover">',
                           url, obj.original_filename)

    @admin.display(description="size", ordering="width")
    def dimensions(self, obj):
        if obj.kind == Asset.Kind.VIDEO:
            return "video"
        return f"{obj.width} \u00d7 {obj.height}" if obj.width else "\u2014"

    @admin.display(description="uploaded", ordering="created")
    def uploaded(self, obj):
        return timezone.localtime(obj.created).strftime("%Y-%m-%d %H:%M")
