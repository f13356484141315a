from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"
    verbose_name = "Datasets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from datasets.deletion import on_asset_deleted
        from datasets.models import Asset

        post_delete.connect(on_asset_deleted, sender=Asset, dispatch_uid="datasets_asset_files")
