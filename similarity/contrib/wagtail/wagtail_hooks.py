"""Everything this app adds to Wagtail's admin, through Wagtail's own hooks."""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import include, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from similarity.contrib.wagtail import urls
from similarity.contrib.wagtail.bulk_actions import BULK_ACTIONS
from similarity.contrib.wagtail.chooser import similar_images
from similarity.contrib.wagtail.panels import ReadinessPanel
from similarity.host.access import get_access_policy
from similarity.host.scopes import SITE_SCOPE


@hooks.register("register_admin_urls")
def register_admin_urls() -> list:
    return [path("similar-images/", include(urls, namespace="similarity_wagtail"))]


class SimilarImagesMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return get_access_policy().can_view(request.user, SITE_SCOPE)


@hooks.register("register_admin_menu_item")
def register_menu_item() -> MenuItem:
    return SimilarImagesMenuItem(
        _("Similar images"), reverse("similarity_wagtail:index"),
        name="similar-images", icon_name="image", order=310,  # right after "Images"
    )


@hooks.register("construct_homepage_panels")
def add_readiness_panel(request: Any, panels: list) -> None:
    panels.append(ReadinessPanel(request))


for _action in BULK_ACTIONS:
    hooks.register("register_bulk_action", _action)
# "Similar to this" in the image chooser: its results narrowed to an image's look-alikes
hooks.register("construct_image_chooser_queryset", similar_images)


@hooks.register("insert_global_admin_css")
def global_admin_css() -> str:
    return format_html('<link rel="stylesheet" href="{}">',
                       static("similarity_wagtail/similarity.css"))


@hooks.register("insert_global_admin_js")
def global_admin_js() -> str:
    # Places each image's actions into its tile of the listing, also after Wagtail
    # swaps the results in by AJAX (search, filters, pagination).
    # The multiple uploader asks "near" for each upload until it is analysed; the URLs
    # travel as data attributes, so a site mounting the admin elsewhere just works.
    # image_search.js: drop or paste an image on any page with "Search with an image".
    return format_html(
        '<script defer src="{}" data-near-url="{}" data-edit-multiple-url="{}"'
        ' data-near-checking="{}"></script><script defer src="{}"></script>',
        static("similarity_wagtail/listing.js"),
        reverse("similarity_wagtail:near", args=["0"]),
        reverse("wagtailimages:edit_multiple", args=[0]),
        _("Checking for look-alikes once it is analysed…"),
        static("similarity_wagtail/image_search.js"),
    )
