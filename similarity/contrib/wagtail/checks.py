"""System checks for the Wagtail integration's place in INSTALLED_APPS."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

APP = "similarity.contrib.wagtail"


@register()
def check_installed_apps(app_configs: Any = None, **kwargs: Any) -> list:
    apps = [name.split(".apps.")[0] for name in settings.INSTALLED_APPS]
    messages = []
    if "similarity" not in apps:
        messages.append(Error(
            f"{APP} needs 'similarity' in INSTALLED_APPS.",
            hint="Add 'similarity' (and 'django_q') to INSTALLED_APPS.",
            id="similarity_wagtail.E001",
        ))
    if "wagtail.images" in apps and APP in apps and apps.index(APP) > apps.index("wagtail.images"):
        messages.append(Warning(
            f"{APP} comes after 'wagtail.images' in INSTALLED_APPS, so the image listing, "
            "edit page and image chooser will not show the 'Find similar' actions.",
            hint=f"Move '{APP}' above the wagtail apps (its templates extend Wagtail's).",
            id="similarity_wagtail.W001",
        ))
    return messages
