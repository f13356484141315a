from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimilarityConfig(AppConfig):
    name = "similarity"
    verbose_name = _("Image similarity")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from similarity import checks, signals  # noqa: F401  (registers handlers and checks)

        signals.connect_asset_signals()
        from django_q.signals import post_spawn

        post_spawn.connect(signals.on_worker_start, dispatch_uid="similarity_worker_start")
