from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "tests.hosts.wagtailsite.images"
    label = "images"
    default_auto_field = "django.db.models.AutoField"
