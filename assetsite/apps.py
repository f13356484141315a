from django.apps import AppConfig


class AssetsiteConfig(AppConfig):
    name = "assetsite"
    verbose_name = "Asset site"
