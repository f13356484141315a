"""API routes; include under the host's API prefix: ``path("api/", include(...))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from similarity import action_api, api, insight_api, map_api, watch_api

router = SimpleRouter()
router.register("notifications", api.NotificationViewSet, basename="similarity-notification")
router.register("saved-searches", watch_api.SavedSearchViewSet,
                basename="similarity-saved-search")

urlpatterns = [
    path("assets/<str:asset_id>/similar/", api.SimilarView.as_view(), name="similarity-similar"),
    path(
        "projects/<str:project_id>/similar/",
        api.ProjectSimilarView.as_view(),
        name="similarity-project-similar",
    ),
    path(
        "projects/<str:project_id>/similarity/",
        api.ProjectReadinessView.as_view(),
        name="similarity-readiness",
    ),
    path(
        "projects/<str:project_id>/similarity/reindex/",
        api.ProjectReindexView.as_view(),
        name="similarity-reindex",
    ),
    path("projects/<str:project_id>/duplicates/", insight_api.DuplicatesView.as_view(),
         name="similarity-duplicates"),
    path("projects/<str:project_id>/outliers/", insight_api.OutliersView.as_view(),
         name="similarity-outliers"),
    path("projects/<str:project_id>/insight/", insight_api.InsightStatusView.as_view(),
         name="similarity-insight"),
    path("projects/<str:project_id>/map/", map_api.MapView.as_view(), name="similarity-map"),
    path("projects/<str:project_id>/actions/", action_api.ActionListView.as_view(),
         name="similarity-actions"),
    path("projects/<str:project_id>/actions/<slug:name>/", action_api.ActionRunView.as_view(),
         name="similarity-action"),
    *router.urls,
]
