from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimilarityConfig(AppConfig):
    name = "similarity"
    verbose_name = _("Image similarity")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use the models.
        from django_q.signals import post_spawn

        from similarity import checks  # noqa: F401  (registers the system checks)
        from similarity.embedding import signal_handlers
        from similarity.insight import receivers as insight_receivers
        from similarity.match import receivers as match_receivers
        from similarity.watch import receivers as watch_receivers

        signal_handlers.connect_asset_signals()
        post_spawn.connect(signal_handlers.on_worker_start, dispatch_uid="similarity_worker_start")
        # The features follow what the embedding layer announces; it knows nothing of them.
        insight_receivers.connect()
        watch_receivers.connect()
        match_receivers.connect()
