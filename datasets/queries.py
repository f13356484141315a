"""Filename search and the metadata query language shared by pages and the API.

A metadata query is a list of ``key=value`` terms (``camera=front weather=rain``; quote
values with spaces; ``a.b=c`` reaches into nested objects). All terms must hold. A value
that reads as a JSON number or boolean also matches that JSON type, so ``iso=100``
finds both ``"100"`` and ``100``.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from django.db.models import Q, QuerySet


class QueryError(ValueError):
    """The query text cannot be understood; the message says how to fix it, ``field``
    which part of the request it is about."""

    def __init__(self, message: str, field: str = "metadata") -> None:
        super().__init__(message)
        self.field = field


def parse_metadata_query(text: str, separators: str = "=") -> list[tuple[list[str], str]]:
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"Unbalanced quotes in metadata query: {text!r}") from exc
    terms = []
    for token in tokens:
        for sep in separators:
            key, found, value = token.partition(sep)
            if found:
                break
        if not found or not key:
            raise QueryError(
                f"Metadata terms look like key=value (e.g. camera=front); got {token!r}."
            )
        if not value:  # "camera=" matched nothing, silently: say what is missing instead
            raise QueryError(
                f"“{token}” has no value: metadata terms look like key=value (e.g. "
                f"{key}{sep}front)."
            )
        if "" in key.split("."):
            raise QueryError(f"“{token}”: a key path has an empty part (e.g. lens..mm).")
        terms.append((key.split("."), value))
    return terms


def _nest(path: list[str], value: Any) -> dict:
    for part in reversed(path):
        value = {part: value}
    return value


def metadata_filter(terms: list[tuple[list[str], str]]) -> Q:
    condition = Q()
    for path, raw in terms:
        alternatives = Q(metadata__contains=_nest(path, raw))
        try:
            typed = json.loads(raw)
        except ValueError:
            typed = None
        if isinstance(typed, (int, float, bool)) or raw == "null":
            alternatives |= Q(metadata__contains=_nest(path, typed))
        condition &= alternatives
    return condition


def filter_assets(
    queryset: QuerySet,
    *,
    search: str = "",
    metadata: str = "",
    separators: str = "=",
) -> QuerySet:
    """Apply the filename search and the metadata query to an asset queryset."""
    for field, text in (("search", search), ("metadata", metadata)):
        if "\x00" in (text or ""):  # PostgreSQL text cannot hold NUL: refused, not a 500
            raise QueryError("The text may not contain NUL characters.", field)
    search = (search or "").strip()
    if search:
        queryset = queryset.filter(original_filename__icontains=search)
    metadata = (metadata or "").strip()
    if metadata:
        queryset = queryset.filter(metadata_filter(parse_metadata_query(metadata, separators)))
    return queryset
