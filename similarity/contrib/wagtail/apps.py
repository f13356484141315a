from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimilarityWagtailConfig(AppConfig):
    """The Wagtail integration; its hooks live in ``wagtail_hooks`` (found by Wagtail)."""

    name = "similarity.contrib.wagtail"
    label = "similarity_wagtail"
    verbose_name = _("Image similarity for Wagtail")

    def ready(self) -> None:
        from similarity.contrib.wagtail import checks  # noqa: F401  (registers the checks)
