"""Admin for our tables, and a mixin for the host's asset admin.

The host keeps its own ``ModelAdmin`` for its asset model and adds
``SimilarityAssetAdminMixin``: an embedding status column and filter, the "Compute
embeddings" action and a "Find similar images" link/action. A model whose admin another
app registered (so the host cannot add a base class) gets the same with
``extend_admin(Model)``, called from the host's ``AppConfig.ready`` or an ``admin.py``
loaded after that app's.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from similarity.conf import similarity_settings
from similarity.embedding.scheduling import reindex_project, request_embedding, schedule_embedding
from similarity.host.access import get_access_policy
from similarity.host.links import results_url, selection_url
from similarity.host.models import image_assets, is_image
from similarity.host.scopes import project_ids_for, project_label
from similarity.models import Embedding, Notification, ProjectReadiness
from similarity.vectors.model_keys import current_model_key


class EmbeddingStatusFilter(admin.SimpleListFilter):
    title = _("embedding status")
    parameter_name = "embedding"

    def lookups(self, request, model_admin):
        return [*Embedding.Status.choices, ("missing", _("Not scheduled"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        rows = Embedding.objects.filter(model_key=current_model_key())
        if value == "missing":
            return queryset.exclude(pk__in=rows.values("asset_id"))
        return queryset.filter(pk__in=rows.filter(status=value).values("asset_id"))


class SimilarityAssetAdminMixin:
    """Add to the host's asset ModelAdmin (before admin.ModelAdmin in the bases).

    The status and "similar" columns are appended to ``list_display`` unless the host
    places them itself; our actions go through Django's permission filtering like the
    host's own (view-only staff get "Find similar images", not "Compute embeddings").
    """

    similarity_actions = ["compute_embeddings", "find_similar"]
    similarity_columns = ["embedding_status", "similar_link"]

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        return columns + [name for name in self.similarity_columns if name not in columns]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        row = Embedding.objects.filter(asset_id=OuterRef("pk"), model_key=current_model_key())
        return queryset.annotate(
            _embedding_status=Subquery(row.values("status")[:1]),
            _embedding_error=Subquery(row.values("error")[:1]),
        )

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), EmbeddingStatusFilter]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        ours = [self.get_action(name) for name in self.similarity_actions if name not in actions]
        for func, name, description in self._filter_actions_by_permissions(request, ours):
            actions[name] = (func, name, description)
        return actions

    @admin.display(description=_("embedding"))
    def embedding_status(self, obj):
        status = getattr(obj, "_embedding_status", None)
        if status is None:
            return "—" if not is_image(obj) else _("not scheduled")
        label = Embedding.Status(status).label
        if status == Embedding.Status.FAILED:
            return format_html('<span title="{}">{} ⚠</span>', obj._embedding_error, label)
        return label

    @admin.display(description=_("similar"))
    def similar_link(self, obj):
        url = results_url(obj.pk)
        if not url or not is_image(obj):
            return "—"
        return format_html('<a href="{}">{}</a>', url, _("Find similar images"))

    @admin.action(description=_("Compute embeddings"), permissions=["change"])
    def compute_embeddings(self, request, queryset):
        """(Re)compute the selected images' vectors: missing, failed and done alike."""
        policy = get_access_policy()
        scopes = project_ids_for(
            image_assets().filter(pk__in=queryset.values("pk")).values_list("pk", flat=True)
        )
        ids = [pk for pk, scope in scopes.items() if policy.can_edit(request.user, scope)]
        refused = len(scopes) - len(ids)
        key = current_model_key()
        redone = Embedding.objects.filter(asset_id__in=ids, model_key=key).update(
            status=Embedding.Status.PENDING, error="", claimed_until=None, attempts=0
        )
        created = schedule_embedding(ids)
        for scope in set(scopes.values()):
            request_embedding(scope, force=True)
        self.message_user(
            request,
            ngettext("Queued %(n)d image for embedding (%(redone)d recomputed).",
                     "Queued %(n)d images for embedding (%(redone)d recomputed).",
                     len(ids)) % {"n": len(ids), "redone": min(redone, len(ids) - created)},
            messages.SUCCESS,
        )
        if refused:
            self.message_user(
                request,
                ngettext("%d image was skipped: you may not re-index its project.",
                         "%d images were skipped: you may not re-index their projects.",
                         refused) % refused,
                messages.WARNING,
            )

    @admin.action(description=_("Find similar images"), permissions=["view"])
    def find_similar(self, request, queryset):
        asset = queryset.first()
        ids = list(queryset.values_list("pk", flat=True)[:int(similarity_settings.MAX_RESULTS)])
        if asset is None:
            return None
        url = results_url(asset.pk) if len(ids) == 1 else selection_url(ids)
        if not url:
            self.message_user(request, _("similarity.urls is not included."), messages.ERROR)
            return None
        return HttpResponseRedirect(url)


def extend_admin(model: type, site: admin.AdminSite | None = None) -> type[admin.ModelAdmin]:
    """Give the ModelAdmin another app registered for ``model`` our column, filter and
    actions, keeping everything else of it. Returns the new admin class."""
    site = site or admin.site
    current = site._registry.get(model)
    base = type(current) if current is not None else admin.ModelAdmin
    if issubclass(base, SimilarityAssetAdminMixin):
        return base
    extended = type(f"Similarity{base.__name__}", (SimilarityAssetAdminMixin, base), {
        "__module__": base.__module__,
    })
    if current is not None:
        site.unregister(model)
    site.register(model, extended)
    return extended


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["asset_id", "project_id", "model_key", "status", "dims", "attempts", "updated"]
    list_filter = ["status", "model_key"]
    search_fields = ["=asset__pk", "=project_id", "error"]
    readonly_fields = ["asset", "model_key", "project_id", "vector", "dims", "created", "updated"]
    exclude = ["vector"]
    list_select_related = False

    def has_add_permission(self, request):
        return False


@admin.register(ProjectReadiness)
class ProjectReadinessAdmin(admin.ModelAdmin):
    list_display = ["project_id", "project_name", "state", "embedded", "pending", "failed",
                    "total", "model_key", "active_model_key", "updated"]
    list_filter = ["state"]
    readonly_fields = [f.name for f in ProjectReadiness._meta.fields]
    actions = ["reindex"]

    @admin.display(description=_("project"))
    def project_name(self, obj):
        return project_label(obj.project_id)

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Re-index (embed missing, retry failed)"))
    def reindex(self, request, queryset):
        outcome: dict[str, int] = defaultdict(int)
        for readiness in queryset:
            for key, value in reindex_project(readiness.project_id).items():
                outcome[key] += value
        self.message_user(
            request,
            _("Queued %(created)d new and %(retried)d failed images.") % outcome,
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created", "project_id", "level", "message", "recipient"]
    list_filter = ["level"]
    search_fields = ["message"]
    readonly_fields = ["key", "created"]
