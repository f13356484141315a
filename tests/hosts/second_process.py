"""Another process of the same host site, changing an asset behind a warm search cache.

Run by tests/hosts/scenario.py as ``python -m tests.hosts.second_process ACTION ...`` with
the host's DJANGO_SETTINGS_MODULE, SIMILARITY_HOST_DB_NAME naming the test database of the
first process (pytest-django's ``test_<name>``) and SIMILARITY_HOST_MEDIA_ROOT its media:

- ``move ASSET_PK FK_NAME TARGET_PK``: ``asset.<fk> = target; asset.save()``
- ``delete ASSET_PK``: ``asset.delete()``

It is the host's own code: plain ORM calls on the model that SIMILARITY names.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.db import transaction

    model = apps.get_model(settings.SIMILARITY["ASSET_MODEL"])
    action, raw_pk, *rest = argv
    asset = model._default_manager.get(pk=model._meta.pk.to_python(raw_pk))
    with transaction.atomic():
        if action == "move":
            fk_name, target_pk = rest
            field = model._meta.get_field(fk_name)
            setattr(asset, fk_name, field.related_model._default_manager.get(pk=target_pk))
            asset.save()
        elif action == "delete":
            asset.delete()
        else:
            raise SystemExit(f"unknown action {action!r}")
    print(f"{action} {raw_pk}: done")


if __name__ == "__main__":
    main(sys.argv[1:])
