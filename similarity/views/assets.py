"""An asset's small thumbnail, for result tiles (never the original file)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from similarity.host.lookups import get_asset_for
from similarity.vectors import thumbnails
from similarity.vectors.images import ImageDecodeError
from similarity.views.base import not_found_as_404


@login_required
@not_found_as_404
def thumbnail(request: HttpRequest, asset_id: str) -> HttpResponse:
    """A small JPEG of an asset the user may see (generated once, then from storage)."""
    asset = get_asset_for(request.user, asset_id)
    try:
        data = thumbnails.get_thumbnail(asset)
    except (ImageDecodeError, OSError, ValueError) as exc:
        return HttpResponse(
            _("No thumbnail: %(reason)s") % {"reason": exc}, status=404, content_type="text/plain"
        )
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
