"""Editing an asset after upload: its metadata and its tags, for the page and the API alike.

Metadata is a flat JSON object (what the filters query with ``key:value``); a page edits it
as key/value rows of text, the API as JSON. Both go through ``clean_metadata``, so a key
is never blank, repeated or too long whichever door wrote it, and the errors say which
row or key is wrong. Tags are the project's own ``Tag`` rows.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from datasets.models import Asset, Tag

MAX_KEYS = 100
MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 2000
MAX_TAGS = 50
TAG_MAX_LENGTH = 100


class EditError(ValueError):
    """An edit that is refused; ``str()`` says what to change."""


def _text(raw: Any) -> str:
    text = unicodedata.normalize("NFC", str(raw))
    return "".join(ch for ch in text if ch in "\t" or unicodedata.category(ch)[0] != "C").strip()


def clean_key(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise EditError(f"{where}: a key must be text.")
    key = _text(raw)
    if not key:
        raise EditError(f"{where}: the key is empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise EditError(f"{where}: the key is longer than {MAX_KEY_LENGTH} characters.")
    return key


def clean_value(raw: Any, where: str) -> Any:
    """Text, a number, true/false, null, or (from the API) a nested object or list, which
    filters reach with dotted keys (``lens.mm=50``)."""
    if raw is None or isinstance(raw, bool | int | float):
        return raw
    if isinstance(raw, dict | list):
        if len(json.dumps(raw)) > MAX_VALUE_LENGTH:
            raise EditError(f"{where}: the value is longer than {MAX_VALUE_LENGTH} characters "
                            "as JSON.")
        return raw
    if not isinstance(raw, str):
        raise EditError(f"{where}: a value must be text, a number, true, false, null, an "
                        "object or a list.")
    value = _text(raw)
    if len(value) > MAX_VALUE_LENGTH:
        raise EditError(f"{where}: the value is longer than {MAX_VALUE_LENGTH} characters.")
    return value


def clean_metadata(value: Any) -> dict[str, Any]:
    """A flat JSON object with clean keys and values (the API's ``metadata``)."""
    if not isinstance(value, dict):
        raise EditError("Metadata must be a JSON object.")
    if len(value) > MAX_KEYS:
        raise EditError(f"Metadata may have at most {MAX_KEYS} keys (this has {len(value)}).")
    cleaned: dict[str, Any] = {}
    for raw_key, raw_value in value.items():
        key = clean_key(raw_key, f"Key “{str(raw_key)[:40]}”")
        if key in cleaned:
            raise EditError(f"Key “{key}” appears twice.")
        cleaned[key] = clean_value(raw_value, f"Key “{key}”")
    return cleaned


def metadata_from_rows(keys: list[str], values: list[str], original: dict[str, Any]) -> dict:
    """The page's key/value rows as metadata. A row with both blank is skipped; a value
    typed as text stays text, except an unchanged value, which keeps its original type (a
    number uploaded through the API stays a number when another row is edited)."""
    cleaned: dict[str, Any] = {}
    for number, (raw_key, raw_value) in enumerate(zip(keys, values, strict=False), start=1):
        if not _text(raw_key) and not _text(raw_value):
            continue
        where = f"Row {number}"
        if not _text(raw_key):
            raise EditError(f"{where}: the value “{_text(raw_value)[:40]}” needs a key.")
        key = clean_key(raw_key, where)
        if key in cleaned:
            raise EditError(f"{where}: the key “{key}” is already used above.")
        value = clean_value(raw_value, where)
        if key in original and shown(original[key]) == value:
            value = original[key]  # untouched: its type (a number, an object) stays
        cleaned[key] = value
    return clean_metadata(cleaned)


def shown(value: Any) -> str:
    """A metadata value as a page's text field shows it (nested ones as JSON; an edit of
    one is kept as text, an untouched one keeps its structure)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def clean_tag(raw: Any) -> str:
    if not isinstance(raw, str):
        raise EditError("A tag must be text.")
    name = _text(raw)
    if not name:
        raise EditError("A tag cannot be empty.")
    if len(name) > TAG_MAX_LENGTH:
        raise EditError(f"A tag is at most {TAG_MAX_LENGTH} characters.")
    return name


def set_tags(asset: Asset, names: Iterable[Any]) -> list[str]:
    """Make the asset's tags exactly ``names`` (the project's tags, created on first use)."""
    wanted = list(dict.fromkeys(clean_tag(name) for name in names))
    if len(wanted) > MAX_TAGS:
        raise EditError(f"An image may have at most {MAX_TAGS} tags.")
    project_id = asset.dataset.project_id
    with transaction.atomic():
        rows = [Tag.objects.get_or_create(project_id=project_id, name=name)[0] for name in wanted]
        asset.tags.set(rows)
    return wanted


def add_tag(asset: Asset, name: Any) -> str:
    name = clean_tag(name)
    if asset.tags.count() >= MAX_TAGS and not asset.tags.filter(name=name).exists():
        raise EditError(f"An image may have at most {MAX_TAGS} tags.")
    row, _created = Tag.objects.get_or_create(project_id=asset.dataset.project_id, name=name)
    row.assets.add(asset)
    return name


def remove_tag(asset: Asset, name: Any) -> bool:
    """Take the tag off this asset (the project's tag stays for its other assets)."""
    row = Tag.objects.filter(project_id=asset.dataset.project_id, name=_text(str(name))).first()
    if row is None or not row.assets.filter(pk=asset.pk).exists():
        return False
    row.assets.remove(asset)
    return True
