"""Pages of the app; include under any prefix: ``path("similarity/", include(...))``."""

from django.urls import path

import similarity.http  # noqa: F401  (registers the key path converter)
from similarity.views import (
    actions,
    assets,
    curate,
    insight,
    match,
    notifications,
    outside,
    readiness,
    results,
    saved,
    text,
)
from similarity.views import map as project_map

app_name = "similarity"

urlpatterns = [
    path("assets/<similarity_key:asset_id>/similar/", results.results, name="results"),
    path("assets/<similarity_key:asset_id>/thumbnail/", assets.thumbnail, name="thumbnail"),
    path("assets/<similarity_key:asset_id>/match/<similarity_key:result_id>/", match.asset_match,
         name="match"),
    path("queries/<uuid:query_id>/match/<similarity_key:result_id>/", match.query_match,
         name="query-match"),
    path("similar/", results.selection, name="selection"),
    path("projects/<similarity_key:project_id>/readiness/", readiness.readiness_json, name="readiness"),
    path("projects/<similarity_key:project_id>/failed/", readiness.failed_assets, name="failed"),
    path("projects/<similarity_key:project_id>/reindex/", readiness.reindex, name="reindex"),
    path("projects/<similarity_key:project_id>/image-search/", outside.image_search, name="image-search"),
    path("queries/<uuid:query_id>/", outside.image_results, name="image-results"),
    path("projects/<similarity_key:project_id>/text-search/", text.text_results,
         name="text-search"),
    path("queries/<uuid:query_id>/preview/", outside.image_preview, name="image-preview"),
    path("queries/<uuid:query_id>/add/", outside.image_add, name="image-add"),
    path("saved/", saved.saved_search_list, name="saved-searches"),
    path("saved/new/", saved.saved_search_create, name="saved-search-create"),
    path("projects/<similarity_key:project_id>/saved/", saved.saved_search_list,
         name="saved-searches-project"),
    path("saved/<int:pk>/rename/", saved.saved_search_rename, name="saved-search-rename"),
    path("saved/<int:pk>/mute/", saved.saved_search_mute, name="saved-search-mute"),
    path("saved/<int:pk>/delete/", saved.saved_search_delete, name="saved-search-delete"),
    path("saved/<int:pk>/run/", saved.saved_search_run, name="saved-search-run"),
    path("saved/<int:pk>/matches/", saved.saved_search_matches, name="saved-search-matches"),
    path("projects/<similarity_key:project_id>/actions/<slug:name>/", actions.run_action, name="action"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read/", notifications.notifications_mark_read, name="notifications-read"),
    path("notifications.json", notifications.notifications_json, name="notifications-json"),
    path("projects/<similarity_key:project_id>/duplicates/", insight.duplicates, name="insight-duplicates"),
    path("projects/<similarity_key:project_id>/duplicates/keep/", insight.keep, name="insight-keep"),
    path("projects/<similarity_key:project_id>/duplicates/marked/", insight.marked,
         name="insight-duplicates-marked"),
    path("projects/<similarity_key:project_id>/duplicates/unmark/", insight.unmark,
         name="insight-unmark"),
    path("projects/<similarity_key:project_id>/outliers/", insight.outliers, name="insight-outliers"),
    path("projects/<similarity_key:project_id>/insight/", insight.status_json, name="insight-status"),
    path("projects/<similarity_key:project_id>/leakage/", curate.leakage, name="insight-leakage"),
    path("projects/<similarity_key:project_id>/diverse/", curate.diverse, name="curate-diverse"),
    path("projects/<similarity_key:project_id>/coverage/", curate.coverage, name="curate-coverage"),
    path("projects/<similarity_key:project_id>/map/", project_map.map_page, name="insight-map"),
    path("projects/<similarity_key:project_id>/map/data/", project_map.map_data, name="insight-map-data"),
    path("projects/<similarity_key:project_id>/map/thumbnails/", project_map.map_thumbnails,
         name="insight-map-thumbs"),
]
