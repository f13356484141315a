from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from assetsite import views

admin.site.site_header = "Asset site administration"
admin.site.site_title = "Asset site admin"
admin.site.index_title = "Projects, datasets, assets and similarity search"

urlpatterns = [
    path("", include("datasets.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("similarity/", include("similarity.urls")),
    path("api/", include("datasets.api_urls")),
    path("api/", include("similarity.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
]
