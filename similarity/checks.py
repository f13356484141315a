"""System checks: misconfiguration is reported at start-up with a fix, not at 3 a.m."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models

from similarity.conf import similarity_settings
from similarity.host import models as host_models
from similarity.vectors.model_keys import PRECISIONS


@register(Tags.models)
def check_host_models(app_configs: Any = None, **kwargs: Any) -> list:
    """Every setting that names something of the host is checked here, with a hint, so a
    typo is reported by ``manage.py check`` instead of surfacing inside the host's save."""
    errors = []
    if not similarity_settings.ASSET_MODEL:
        return [Error(
            "SIMILARITY['ASSET_MODEL'] is not set: similarity does not know which model holds "
            "your images.",
            hint="Add SIMILARITY = {'ASSET_MODEL': 'app_label.ModelName', 'IMAGE_FIELD': "
                 "'image'} to your settings (Wagtail sites: add 'similarity.contrib.wagtail' "
                 "to INSTALLED_APPS instead).",
            id="similarity.E001",
        )]
    try:
        model = host_models.get_asset_model()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Name your image model in SIMILARITY['ASSET_MODEL'] as "
                      "'app_label.ModelName'.", id="similarity.E001")]
    try:
        host_models.get_image_field()
    except ImproperlyConfigured as exc:
        names = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        errors.append(Error(
            str(exc),
            hint=f"Set SIMILARITY['IMAGE_FIELD'] to one of {names}." if names else
            f"{model._meta.label} has no FileField or ImageField.",
            id="similarity.E002",
        ))
    lookup = similarity_settings.PROJECT_LOOKUP
    if lookup is not None:
        target = host_models.follow_lookup(model, lookup)
        project_model = None
        if similarity_settings.PROJECT_MODEL:
            try:
                project_model = host_models.get_project_model()
            except ImproperlyConfigured as exc:
                errors.append(Error(str(exc), hint="Set SIMILARITY['PROJECT_MODEL'] to the model "
                                    "PROJECT_LOOKUP leads to, or leave it unset.",
                                    id="similarity.E003"))
        if target is None:
            relations = [f.name for f in model._meta.get_fields()
                         if f.is_relation and f.many_to_one]
            errors.append(Error(
                f"SIMILARITY['PROJECT_LOOKUP'] {lookup!r} is not a path of relations from "
                f"{model._meta.label}.",
                hint=f"Use the ORM path from the asset to its project, starting with one of "
                     f"{relations}; or None for one site-wide scope.",
                id="similarity.E004",
            ))
        elif project_model is not None and target is not project_model:
            errors.append(Error(
                f"SIMILARITY['PROJECT_LOOKUP'] {lookup!r} leads to {target._meta.label}, not "
                f"to PROJECT_MODEL {project_model._meta.label}.",
                hint="Fix one of the two, or leave PROJECT_MODEL unset.",
                id="similarity.E004",
            ))
    rule = similarity_settings.IS_IMAGE
    if rule is not None:
        try:
            str(host_models.image_assets().query)  # compiles the lookups without a query
        except (FieldError, ValueError, TypeError, ImportError, AttributeError) as exc:
            errors.append(Error(
                f"SIMILARITY['IS_IMAGE'] {rule!r} cannot filter {model._meta.label}: {exc}",
                hint="Use None (every asset is an image), a dict of lookups on fields the "
                     "model has, or a dotted path to a function (queryset) -> queryset.",
                id="similarity.E008",
            ))
    return errors


@register(Tags.compatibility)
def check_q_cluster(app_configs: Any = None, **kwargs: Any) -> list:
    conf = getattr(settings, "Q_CLUSTER", {}) or {}
    errors = []
    timeout, retry = conf.get("timeout"), conf.get("retry", 60)
    if timeout is None or retry is None or retry <= timeout:
        errors.append(Error(
            f"Q_CLUSTER['retry'] ({retry}) must be greater than Q_CLUSTER['timeout'] "
            f"({timeout}); otherwise the broker hands a running embedding task to a second "
            "worker.",
            hint="For example timeout=600, retry=720.",
            id="similarity.E005",
        ))
    if not conf.get("max_attempts"):
        errors.append(Warning(
            "Q_CLUSTER['max_attempts'] is unbounded: a task that always fails is retried "
            "forever.",
            hint="Set max_attempts, e.g. 3.",
            id="similarity.W001",
        ))
    return errors


@register(Tags.compatibility)
def check_precision(app_configs: Any = None, **kwargs: Any) -> list:
    """A PRECISION the worker would refuse is reported by ``manage.py check`` (and so by
    ``serve`` and deploys) instead of failing every embedding task at 3 a.m.

    Decided from settings alone, like the model key: ``DEVICE`` "auto" with fp16 cannot
    be judged here (the web process may have no GPU while the worker has one), so it is a
    warning, not an error."""
    precision = similarity_settings.PRECISION
    device = str(similarity_settings.DEVICE)
    if precision is None:
        return []
    if precision not in PRECISIONS:
        return [Error(
            f"SIMILARITY['PRECISION'] is {precision!r}, which is not a precision similarity knows.",
            hint="Use None (fp16 with DEVICE 'cuda', else fp32), 'fp32', 'int8' (CPU workers) "
                 "or 'fp16' (CUDA workers).",
            id="similarity.E009",
        )]
    if precision == "int8" and device not in ("auto", "cpu"):
        return [Error(
            f"SIMILARITY['PRECISION'] is 'int8', which runs on the CPU only, but DEVICE is {device!r}.",
            hint="Use DEVICE 'cpu' (or 'auto') with int8, or PRECISION None (fp16) on a GPU.",
            id="similarity.E010",
        )]
    if precision == "fp16" and device not in ("auto", "cuda"):
        return [Error(
            f"SIMILARITY['PRECISION'] is 'fp16', which needs a CUDA GPU, but DEVICE is {device!r}.",
            hint="Set DEVICE 'cuda' for fp16, or PRECISION 'fp32'/'int8' for CPU workers.",
            id="similarity.E011",
        )]
    if precision == "fp16" and device == "auto":
        return [Warning(
            "SIMILARITY['PRECISION'] is 'fp16' with DEVICE 'auto': a worker that finds no CUDA "
            "GPU will refuse to load the model.",
            hint="Set DEVICE 'cuda' on GPU workers (fp16 is then the default).",
            id="similarity.W002",
        )]
    return []


@register(Tags.compatibility)
def check_cache_layout(app_configs: Any = None, **kwargs: Any) -> list:
    """An EXACT_CACHE_LAYOUT search would refuse, reported before the first search."""
    from similarity.vectors.exact import LAYOUTS

    layout = similarity_settings.EXACT_CACHE_LAYOUT
    if layout == "auto" or layout in LAYOUTS:
        return []
    return [Error(f"SIMILARITY['EXACT_CACHE_LAYOUT'] is {layout!r}.",
                  hint="Use 'auto' (float32 while a project fits EXACT_CACHE_MB, else int8), "
                       "'float32' or 'int8'.", id="similarity.E013")]


@register(Tags.database)
def check_pgvector(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    """Runs with ``check --database default`` (and in migrate): needs the pgvector extension."""
    if not databases:
        return []
    from django.db import connections

    errors = []
    for alias in databases:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            errors.append(Error(
                f"Database {alias!r} is {connection.vendor}; similarity needs PostgreSQL with "
                "pgvector.",
                id="similarity.E006",
            ))
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(installed_version, default_version) "
                           "FROM pg_available_extensions WHERE name = 'vector'")
            row = cursor.fetchone()
        if row is None:
            errors.append(Error(
                f"The PostgreSQL server of database {alias!r} has no pgvector extension.",
                hint=PGVECTOR_HINT, id="similarity.E007",
            ))
        elif _version(row[0]) < (0, 8):
            errors.append(Error(
                f"The PostgreSQL server of database {alias!r} has pgvector {row[0]}; "
                "similarity needs 0.8 or later.",
                hint=PGVECTOR_HINT + " Then run ALTER EXTENSION vector UPDATE;",
                id="similarity.E012",
            ))
    return errors


PGVECTOR_HINT = ("Install pgvector 0.8+ on the database server: Debian/Ubuntu "
                 "'apt install postgresql-<major>-pgvector', Docker 'pgvector/pgvector:pg17', "
                 "or the extension of your managed service (README: pgvector on your own "
                 "PostgreSQL).")


def _version(text: str | None) -> tuple[int, ...]:
    """'0.8.1' as (0, 8, 1); anything unreadable as (0,), which asks for an upgrade."""
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (0,)
