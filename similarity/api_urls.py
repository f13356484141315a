"""API routes; include under the host's API prefix: ``path("api/", include(...))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

import similarity.http  # noqa: F401  (registers the key path converter)
from similarity.api import actions, curate, insight, match, notifications, readiness, saved, search
from similarity.api import map as project_map

router = SimpleRouter()
router.register("notifications", notifications.NotificationViewSet,
                basename="similarity-notification")
router.register("saved-searches", saved.SavedSearchViewSet, basename="similarity-saved-search")

urlpatterns = [
    path("assets/<similarity_key:asset_id>/similar/", search.SimilarView.as_view(),
         name="similarity-similar"),
    path("projects/<similarity_key:project_id>/similar/", search.ProjectSimilarView.as_view(),
         name="similarity-project-similar"),
    path("assets/<similarity_key:asset_id>/match/<similarity_key:result_id>/",
         match.AssetMatchView.as_view(), name="similarity-match"),
    path("query-images/<uuid:query_id>/match/<similarity_key:result_id>/",
         match.QueryImageMatchView.as_view(), name="similarity-query-match"),
    path("projects/<similarity_key:project_id>/similarity/", readiness.ProjectReadinessView.as_view(),
         name="similarity-readiness"),
    path("projects/<similarity_key:project_id>/similarity/reindex/", readiness.ProjectReindexView.as_view(),
         name="similarity-reindex"),
    path("projects/<similarity_key:project_id>/duplicates/", insight.DuplicatesView.as_view(),
         name="similarity-duplicates"),
    path("projects/<similarity_key:project_id>/outliers/", insight.OutliersView.as_view(),
         name="similarity-outliers"),
    path("projects/<similarity_key:project_id>/insight/", insight.InsightStatusView.as_view(),
         name="similarity-insight"),
    path("projects/<similarity_key:project_id>/diverse/", curate.DiverseView.as_view(),
         name="similarity-diverse"),
    path("projects/<similarity_key:project_id>/coverage/", curate.CoverageView.as_view(),
         name="similarity-coverage"),
    path("projects/<similarity_key:project_id>/leakage/", curate.LeakageView.as_view(),
         name="similarity-leakage"),
    path("projects/<similarity_key:project_id>/map/", project_map.MapView.as_view(), name="similarity-map"),
    path("projects/<similarity_key:project_id>/actions/", actions.ActionListView.as_view(),
         name="similarity-actions"),
    path("projects/<similarity_key:project_id>/actions/<slug:name>/", actions.ActionRunView.as_view(),
         name="similarity-action"),
    *router.urls,
]
