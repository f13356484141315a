"""Admin URLs, mounted by ``wagtail_hooks`` under the Wagtail admin (never by the host)."""

from django.urls import path

from similarity.contrib.wagtail import insight, saved, views

app_name = "similarity_wagtail"

urlpatterns = [
    path("", views.AreaView.as_view(), name="index"),
    path("images/<str:image_id>/", views.ResultsView.as_view(), name="results"),
    path("images/<str:image_id>/region/", views.region_search, name="region-search"),
    path("images/<str:image_id>/match/<str:result_id>/", views.image_match, name="match"),
    path("images/<str:image_id>/near/", views.near, name="near"),
    path("regions/<uuid:query_id>/", views.RegionResultsView.as_view(), name="region-results"),
    path("regions/<uuid:query_id>/match/<str:result_id>/", views.region_match,
         name="region-match"),
    path("selection/", views.SelectionResultsView.as_view(), name="selection"),
    path("search-image/", views.image_search, name="image-search"),
    path("queries/<uuid:query_id>/", views.OutsideResultsView.as_view(), name="image-results"),
    path("queries/<uuid:query_id>/preview/", views.image_preview, name="image-preview"),
    path("describe/", views.TextResultsView.as_view(), name="text"),
    path("duplicates/", insight.DuplicatesView.as_view(), name="duplicates"),
    path("unusual/", insight.UnusualView.as_view(), name="unusual"),
    path("map/", insight.MapView.as_view(), name="map"),
    path("map/data/", insight.map_data, name="map-data"),
    path("map/thumbnails/", insight.map_thumbnails, name="map-thumbs"),
    path("saved/", saved.SavedListView.as_view(), name="saved"),
    path("saved/create/", saved.create, name="saved-create"),
    path("saved/<int:pk>/", saved.MatchesView.as_view(), name="saved-matches"),
    path("saved/<int:pk>/mute/", saved.mute, name="saved-mute"),
    path("saved/<int:pk>/delete/", saved.delete, name="saved-delete"),
    path("retry/", views.retry, name="retry"),
    path("notifications/read/", views.mark_read, name="mark-read"),
]
