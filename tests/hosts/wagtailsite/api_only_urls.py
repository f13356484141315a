"""The URLconf the README's Wagtail section gives a site: Wagtail's own, plus similarity's
API only (its admin pages arrive through Wagtail's hooks; ``similarity.urls`` is not
mounted, so the reusable app's own pages have no URL)."""

from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("api/similarity/", include("similarity.api_urls")),
    path("", include(wagtail_urls)),
]
