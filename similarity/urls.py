"""Pages of the app; include under any prefix: ``path("similarity/", include(...))``."""

from django.urls import path

from similarity import insight_views, views

app_name = "similarity"

urlpatterns = [
    path("assets/<str:asset_id>/similar/", views.results, name="results"),
    path("assets/<str:asset_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("similar/", views.selection, name="selection"),
    path("projects/<str:project_id>/readiness/", views.readiness_json, name="readiness"),
    path("projects/<str:project_id>/failed/", views.failed_assets, name="failed"),
    path("projects/<str:project_id>/reindex/", views.reindex, name="reindex"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_mark_read, name="notifications-read"),
    path("notifications.json", views.notifications_json, name="notifications-json"),
    path("projects/<str:project_id>/duplicates/", insight_views.duplicates,
         name="insight-duplicates"),
    path("projects/<str:project_id>/duplicates/keep/", insight_views.keep, name="insight-keep"),
    path("projects/<str:project_id>/outliers/", insight_views.outliers, name="insight-outliers"),
    path("projects/<str:project_id>/insight/", insight_views.status_json, name="insight-status"),
]
