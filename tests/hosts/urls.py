from django.contrib import admin
from django.urls import include, path

from tests.hosts.photos import views

urlpatterns = [
    path("albums/<int:pk>/", views.album, name="album"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("tools/similar/", include("similarity.urls")),  # any prefix works
    path("api/v2/", include("similarity.api_urls")),
]
