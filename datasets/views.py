"""Server-rendered pages. Thin: rules live in access.py, uploads.py and queries.py."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from datasets import access, editing, embedding_state
from datasets.deletion import delete_dataset
from datasets.forms import AssetFilterForm, DatasetForm
from datasets.models import Asset, Dataset
from datasets.queries import QueryError, filter_assets
from datasets.serving import serve_file
from datasets.uploads import UploadRejected, create_asset

logger = logging.getLogger(__name__)


def _require_edit(user: Any, project_id: int) -> None:
    if not access.can_edit(user, project_id):
        raise PermissionDenied("Only the project's editors and admins can do this.")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    project = access.visible_projects(request.user).first()
    if project is None:
        return render(request, "datasets/no_projects.html", {})
    return redirect("datasets:project", project.pk)


@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = access.get_visible_or_404(access.visible_projects(request.user), pk=pk)
    datasets = list(project.datasets.annotate(
        images=Count("assets", filter=Q(assets__kind=Asset.Kind.IMAGE)),
        videos=Count("assets", filter=Q(assets__kind=Asset.Kind.VIDEO)),
    ))
    state = embedding_state.project_state(project.pk)
    counts = embedding_state.embedded_per_dataset(project.pk, state.model_key)
    for dataset in datasets:
        dataset.embedding = counts.get(dataset.pk, {"done": 0, "failed": 0})
    return render(
        request,
        "datasets/project.html",
        {
            "project": project,
            "datasets": datasets,
            "can_edit": access.can_edit(request.user, project.pk),
            "form": DatasetForm(project=project),
        },
    )


@login_required
@require_POST
def dataset_create(request: HttpRequest, pk: int) -> HttpResponse:
    project = access.get_visible_or_404(access.visible_projects(request.user), pk=pk)
    _require_edit(request.user, project.pk)
    form = DatasetForm(request.POST, project=project)
    if form.is_valid():
        dataset = form.save(commit=False)
        dataset.project = project
        dataset.save()
        messages.success(request, f"Dataset “{dataset.name}” created.")
        return redirect("datasets:dataset", dataset.pk)
    for error in form.errors.get("name", []):
        messages.error(request, error)
    return redirect("datasets:project", project.pk)


@login_required
@require_POST
def dataset_rename(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = access.get_visible_or_404(access.visible_datasets(request.user), pk=pk)
    _require_edit(request.user, dataset.project_id)
    form = DatasetForm(request.POST, instance=dataset, project=dataset.project)
    if form.is_valid():
        form.save()
        messages.success(request, f"Dataset renamed to “{dataset.name}”.")
    else:
        for error in form.errors.get("name", []):
            messages.error(request, error)
    return redirect("datasets:dataset", dataset.pk)


@login_required
@require_POST
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = access.get_visible_or_404(access.visible_datasets(request.user), pk=pk)
    _require_edit(request.user, dataset.project_id)
    project_id, name = dataset.project_id, dataset.name
    delete_dataset(dataset)  # a few statements whatever its size; files go after commit
    messages.success(request, f"Dataset “{name}” deleted.")
    return redirect("datasets:project", project_id)


def page_of_assets(queryset, before: str | None, after: str | None, size: int):
    """Keyset pagination on the primary key: constant cost at any depth of 100k assets."""
    if after and after.isdigit():
        rows = list(queryset.filter(pk__gt=int(after)).order_by("pk")[: size + 1])
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_older = queryset.filter(pk__lt=rows[-1].pk).exists() if rows else False
    else:
        page = queryset
        if before and before.isdigit():
            page = queryset.filter(pk__lt=int(before))
        rows = list(page.order_by("-pk")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        # newer within the same filtered set (never any asset of the site)
        has_newer = False
        if before and before.isdigit():
            newest_shown = rows[0].pk if rows else int(before) - 1
            has_newer = queryset.filter(pk__gt=newest_shown).exists()
    return rows, has_older, has_newer


@login_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = access.get_visible_or_404(
        access.visible_datasets(request.user).select_related("project"), pk=pk
    )
    form = AssetFilterForm(request.GET or None)
    assets = Asset.objects.filter(dataset=dataset).select_related("dataset")
    query_error = None
    if form.is_valid():
        try:
            assets = filter_assets(
                assets, search=form.cleaned_data["q"], metadata=form.cleaned_data["meta"]
            )
        except QueryError as exc:
            query_error = str(exc)
            assets = assets.none()
    tag = request.GET.get("tag", "").strip()
    if tag:  # the project's tags, added by the bulk "Add a tag" action
        assets = assets.filter(tags__project=dataset.project, tags__name=tag)
    size = settings.DATASETS_PAGE_SIZE
    before, after = request.GET.get("before"), request.GET.get("after")
    rows, has_older, has_newer = page_of_assets(assets, before, after, size)
    # The newer/older links keep the filters; only the cursor changes.
    params = request.GET.copy()
    for key in ("before", "after"):
        params.pop(key, None)
    base = params.urlencode()
    filtered = bool(form.is_valid() and (form.cleaned_data["q"] or form.cleaned_data["meta"]))
    filtered = filtered or bool(tag)
    return render(
        request,
        "datasets/dataset.html",
        {
            "project": dataset.project,
            "dataset": dataset,
            "assets": rows,
            "total": assets.count() if query_error is None else 0,
            "filtered": filtered,
            "form": form,
            "query_error": query_error,
            "tag": tag,
            "older_url": f"?{base}&before={rows[-1].pk}" if has_older and rows else None,
            "newer_url": f"?{base}&after={rows[0].pk}" if has_newer and rows else None,
            "can_edit": access.can_edit(request.user, dataset.project_id),
            "upload_limits": {
                "max_files": settings.DATASETS_MAX_FILES_PER_REQUEST,
                "max_image_mb": settings.DATASETS_MAX_IMAGE_BYTES // 2**20,
                "max_video_mb": settings.DATASETS_MAX_VIDEO_BYTES // 2**20,
            },
        },
    )


def ingest_files(request: HttpRequest, dataset: Dataset, files: list, metadata: dict | None):
    """Store each file on its own; one bad file never undoes the others."""
    results = []
    for upload in files:
        try:
            asset = create_asset(dataset, upload, user=request.user, metadata=metadata)
        except UploadRejected as exc:
            logger.info("Rejected upload %r: %s", exc.filename, exc.reason)
            results.append({"file": exc.filename, "ok": False, "error": exc.reason})
        else:
            results.append(
                {"file": asset.original_filename, "ok": True, "id": asset.pk, "kind": asset.kind}
            )
    return results


@login_required
@require_POST
def dataset_upload(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = access.get_visible_or_404(access.visible_datasets(request.user), pk=pk)
    _require_edit(request.user, dataset.project_id)
    wants_json = "application/json" in request.headers.get("Accept", "")
    files = request.FILES.getlist("files")
    limit = settings.DATASETS_MAX_FILES_PER_REQUEST
    error = None
    if not files:
        error = "Choose at least one file to upload."
    elif len(files) > limit:
        error = f"Upload at most {limit} files at a time (you sent {len(files)})."
    metadata = None
    if error is None and request.POST.get("metadata"):
        try:
            metadata = json.loads(request.POST["metadata"])
        except ValueError:
            error = "Metadata must be a JSON object, e.g. {\"camera\": \"front\"}."
        if not isinstance(metadata, dict) and error is None:
            error = "Metadata must be a JSON object, e.g. {\"camera\": \"front\"}."
    if error:
        if wants_json:
            return JsonResponse({"error": error}, status=400)
        messages.error(request, error)
        return redirect("datasets:dataset", dataset.pk)

    results = ingest_files(request, dataset, files, metadata)
    if wants_json:
        status = 201 if any(r["ok"] for r in results) else 400
        return JsonResponse({"results": results}, status=status)
    stored = sum(r["ok"] for r in results)
    if stored:
        messages.success(request, f"Uploaded {stored} file{'s' if stored != 1 else ''}.")
    for result in results:
        if not result["ok"]:
            messages.error(request, f"{result['file']}: {result['error']}")
    return redirect("datasets:dataset", dataset.pk)


@login_required
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    asset = access.get_visible_or_404(
        access.visible_assets(request.user).select_related("dataset__project"), pk=pk
    )
    return render(request, "datasets/asset.html", _asset_context(request, asset))


def _asset_context(request: HttpRequest, asset: Asset, **extra: Any) -> dict[str, Any]:
    state = embedding_state.project_state(asset.dataset.project_id)
    embedding = embedding_state.asset_embedding(asset, state.model_key)
    unavailable = embedding_state.search_unavailable_reason(state)
    if not unavailable and embedding.status == "pending":
        unavailable = "Available once this image is embedded."
    elif not unavailable and embedding.status == "failed":
        unavailable = "Unavailable: this image could not be embedded."
    rows = extra.pop("rows", None)
    if rows is None:
        rows = [(key, editing.shown(value)) for key, value in sorted(asset.metadata.items())]
    return {
        "project": asset.dataset.project,
        "dataset": asset.dataset,
        "asset": asset,
        "embedding": embedding,
        "search_unavailable": unavailable if asset.is_image else "",
        "can_edit": access.can_edit(request.user, asset.dataset.project_id),
        "metadata_json": json.dumps(asset.metadata, indent=2, sort_keys=True),
        "metadata_rows": [*rows, *[("", "")] * 3],  # three empty rows to add keys
        "tags": list(asset.tags.values_list("name", flat=True)),
        **extra,
    }


def _editable_asset(request: HttpRequest, pk: int) -> Asset:
    asset = access.get_visible_or_404(
        access.visible_assets(request.user).select_related("dataset__project"), pk=pk
    )
    _require_edit(request.user, asset.dataset.project_id)
    return asset


@login_required
@require_POST
def asset_metadata(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the key/value rows of the asset page (editors); a refused edit shows the page
    again with what was typed and the reason, naming the row."""
    asset = _editable_asset(request, pk)
    keys, values = request.POST.getlist("key"), request.POST.getlist("value")
    try:
        metadata = editing.metadata_from_rows(keys, values, asset.metadata)
    except editing.EditError as exc:
        typed = list(zip(keys, values, strict=False))
        return render(request, "datasets/asset.html", _asset_context(
            request, asset, metadata_error=str(exc), rows=typed), status=400)
    asset.metadata = metadata
    asset.save(update_fields=["metadata"])
    messages.success(request, f"Saved the metadata of “{asset.original_filename}”.")
    return redirect(reverse("datasets:asset", args=[asset.pk]))


@login_required
@require_POST
def asset_tag(request: HttpRequest, pk: int) -> HttpResponse:
    """Add (``add``) or remove (``remove``) one tag of the asset (editors)."""
    asset = _editable_asset(request, pk)
    try:
        if "remove" in request.POST:
            name = request.POST["remove"]
            if editing.remove_tag(asset, name):
                messages.success(request, f"Removed the tag “{name}”.")
        else:
            name = editing.add_tag(asset, request.POST.get("add", ""))
            messages.success(request, f"Tagged “{name}”.")
    except editing.EditError as exc:
        messages.error(request, f"{asset.original_filename}: {exc}")
    return redirect(reverse("datasets:asset", args=[asset.pk]))


@login_required
def asset_file(request: HttpRequest, pk: int) -> FileResponse:
    asset = access.get_visible_or_404(access.visible_assets(request.user), pk=pk)
    download = asset.original_filename if request.GET.get("download") else None
    return serve_file(asset.file, asset.content_type, download_name=download)


@login_required
def asset_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    asset = access.get_visible_or_404(access.visible_assets(request.user), pk=pk)
    return serve_file(asset.thumbnail, "image/webp")


@login_required
@require_POST
def asset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    asset = access.get_visible_or_404(
        access.visible_assets(request.user).select_related("dataset"), pk=pk
    )
    _require_edit(request.user, asset.dataset.project_id)
    dataset_id, name = asset.dataset_id, asset.original_filename
    asset.delete()
    messages.success(request, f"Deleted “{name}”.")
    next_url = (request.POST.get("next") or "").strip()
    # browsers read "/\evil.com" as "//evil.com": a local path only, normalised and checked
    if (next_url.startswith("/") and not next_url.startswith(("//", "/\\"))
            and url_has_allowed_host_and_scheme(next_url.replace("\\", "/"), allowed_hosts=None,
                                                require_https=request.is_secure())):
        return redirect(next_url)
    return redirect(reverse("datasets:dataset", args=[dataset_id]))
