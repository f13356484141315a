from django.apps import AppConfig


class PhotosConfig(AppConfig):
    name = "tests.hosts.photos"
    label = "photos"
    default_auto_field = "django.db.models.BigAutoField"
