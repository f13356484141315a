from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    """No ``default_auto_field``: implicit keys follow settings.DEFAULT_AUTO_FIELD (AutoField)."""

    name = "tests.hosts.archive"
    label = "archive"
