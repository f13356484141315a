from django.conf import settings
from django.db import models
from wagtail.admin.panels import FieldPanel
from wagtail.models import Page


class HomePage(Page):
    # an image field, so the page editor opens Wagtail's image chooser (the chooser's
    # "Similar to this" is tested through it)
    hero_image = models.ForeignKey(settings.WAGTAILIMAGES_IMAGE_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    content_panels = [*Page.content_panels, FieldPanel("hero_image")]
