"""Deleting assets and datasets: files leave storage, and a dataset goes in a few statements.

An asset's file and thumbnail are removed from storage once the delete commits (never
before: a rolled-back delete must keep them), whichever path deleted it (page, API,
admin, a cascade from its project); a file already gone is no error.

Deleting a dataset through the ORM would load every asset and send two signals per
asset, each with its own queries, inside the request: ``delete_dataset`` instead removes
similarity's rows and the assets with one statement each, in one transaction, and the
files after commit. Every table that points at the assets (tags, and whatever a later
migration adds) is emptied of them first, found from the model's relations rather than
listed by hand: a hand-written list once missed the tag table, and the deferred
foreign-key check then failed the whole delete at commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.storage import Storage
from django.db import connection, models, transaction
from django.db.models.deletion import Collector

from datasets.models import Asset, Dataset

logger = logging.getLogger(__name__)


def remove_files(storage: Storage, names: list[str]) -> int:
    """Delete these stored files, tolerating missing ones; returns how many were removed."""
    removed = 0
    for name in names:
        try:
            if storage.exists(name):
                storage.delete(name)
                removed += 1
        except OSError:
            logger.warning("Could not delete the stored file %s", name)
    return removed


def remove_files_on_commit(storage: Storage, names: list[str]) -> None:
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: remove_files(storage, names))


def on_asset_deleted(sender: Any, instance: Asset, **kwargs: Any) -> None:
    """post_delete: the asset's file and thumbnail go once the delete commits."""
    remove_files_on_commit(instance.file.storage,
                           [instance.file.name or "", instance.thumbnail.name or ""])


def _delete_dependants(assets: models.QuerySet) -> bool:
    """Delete (or null) every row of another table that references these assets.

    One statement per relation when Django's collector says the rows can be deleted
    without signals or further cascades (a many-to-many link table, say); otherwise the
    ORM's own delete, so nothing further down is skipped either. False when a relation
    asks for the ORM's judgement (PROTECT, RESTRICT, SET_DEFAULT, SET(...)): the caller
    then deletes the assets through the ORM, which raises or applies the rule.
    """
    relations = [
        relation for relation in Asset._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete
        and (relation.one_to_many or relation.one_to_one)
        and relation.on_delete is not models.DO_NOTHING
    ]
    if any(r.on_delete not in (models.CASCADE, models.SET_NULL) for r in relations):
        return False
    collector = Collector(using=assets.db)
    for relation in relations:
        related = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": assets.values("pk")})
        if relation.on_delete is models.SET_NULL:
            related.update(**{relation.field.name: None})
        elif collector.can_fast_delete(related):
            related._raw_delete(related.db)
        else:
            related.delete()
    return True


def delete_dataset(dataset: Dataset) -> int:
    """Delete a dataset and its assets in one transaction; returns the number of assets."""
    from similarity.embedding.scheduling import forget_assets

    assets = Asset.objects.filter(dataset=dataset)
    with transaction.atomic():
        names = [name for pair in assets.values_list("file", "thumbnail") for name in pair]
        forget_assets(assets.values("pk"))  # one DELETE of similarity's rows
        if _delete_dependants(assets):  # tags and any other table pointing at the assets
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {Asset._meta.db_table} WHERE dataset_id = %s",  # noqa: S608
                    [dataset.pk],
                )
                count = cursor.rowcount
        else:
            count = assets.delete()[1].get(Asset._meta.label, 0)
        dataset.delete()
        remove_files_on_commit(Asset._meta.get_field("file").storage, names)
    logger.info("Deleted dataset %s with %d assets", dataset.pk, count)
    return count
