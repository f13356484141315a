"""API routes; include under the host's API prefix: ``path("api/", include(...))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from similarity import api

router = SimpleRouter()
router.register("notifications", api.NotificationViewSet, basename="similarity-notification")

urlpatterns = [
    path("assets/<str:asset_id>/similar/", api.SimilarView.as_view(), name="similarity-similar"),
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
    *router.urls,
]
