"""Pages of the app; include under any prefix: ``path("similarity/", include(...))``."""

from django.urls import path

from similarity import action_views, insight_views, map_views, query_views, views, watch_views

app_name = "similarity"

urlpatterns = [
    path("assets/<str:asset_id>/similar/", views.results, name="results"),
    path("assets/<str:asset_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("similar/", views.selection, name="selection"),
    path("projects/<str:project_id>/readiness/", views.readiness_json, name="readiness"),
    path("projects/<str:project_id>/failed/", views.failed_assets, name="failed"),
    path("projects/<str:project_id>/reindex/", views.reindex, name="reindex"),
    path("projects/<str:project_id>/image-search/", query_views.image_search,
         name="image-search"),
    path("queries/<uuid:query_id>/", query_views.image_results, name="image-results"),
    path("queries/<uuid:query_id>/preview/", query_views.image_preview, name="image-preview"),
    path("queries/<uuid:query_id>/add/", query_views.image_add, name="image-add"),
    path("saved/", watch_views.saved_search_list, name="saved-searches"),
    path("saved/new/", watch_views.saved_search_create, name="saved-search-create"),
    path("projects/<str:project_id>/saved/", watch_views.saved_search_list,
         name="saved-searches-project"),
    path("saved/<int:pk>/rename/", watch_views.saved_search_rename, name="saved-search-rename"),
    path("saved/<int:pk>/mute/", watch_views.saved_search_mute, name="saved-search-mute"),
    path("saved/<int:pk>/delete/", watch_views.saved_search_delete, name="saved-search-delete"),
    path("saved/<int:pk>/run/", watch_views.saved_search_run, name="saved-search-run"),
    path("saved/<int:pk>/matches/", watch_views.saved_search_matches,
         name="saved-search-matches"),
    path("projects/<str:project_id>/actions/<slug:name>/", action_views.run_action,
         name="action"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_mark_read, name="notifications-read"),
    path("notifications.json", views.notifications_json, name="notifications-json"),
    path("projects/<str:project_id>/duplicates/", insight_views.duplicates,
         name="insight-duplicates"),
    path("projects/<str:project_id>/duplicates/keep/", insight_views.keep, name="insight-keep"),
    path("projects/<str:project_id>/outliers/", insight_views.outliers, name="insight-outliers"),
    path("projects/<str:project_id>/insight/", insight_views.status_json, name="insight-status"),
    path("projects/<str:project_id>/map/", map_views.map_page, name="insight-map"),
    path("projects/<str:project_id>/map/data/", map_views.map_data, name="insight-map-data"),
    path("projects/<str:project_id>/map/thumbnails/", map_views.map_thumbnails,
         name="insight-map-thumbs"),
]
