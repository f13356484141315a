"""The `wagtail start` URLconf, plus similarity's API (and pages) before the page
catch-all; the admin pages arrive through Wagtail's register_admin_urls hook."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("api/similarity/", include("similarity.api_urls")),
    path("similarity/", include("similarity.urls")),
    # The test server serves uploads (renditions) itself; `wagtail start` does it under DEBUG.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    path("", include(wagtail_urls)),
]
