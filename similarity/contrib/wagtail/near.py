"""Near-duplicates of a new upload: what the edit page and the multiple uploader warn of.

Wagtail itself flags only byte-identical files; a re-encoded or resized copy is found here
once the upload is analysed, among the images the editor may see.
"""

from __future__ import annotations

from typing import Any

from similarity.conf import similarity_settings
from similarity.errors import SimilarityError
from similarity.search import find_similar

#: At most this many look-alikes are shown on the edit page.
NEAR_SHOWN = 6


def near_duplicates(image: Any, user: Any) -> list[Any]:
    """Matches of ``image`` at or above ``NEAR_DUPLICATE_SIMILARITY``, best first: an
    exact search of what ``user`` may see (Wagtail itself flags byte-identical files only)."""
    threshold = similarity_settings.NEAR_DUPLICATE_SIMILARITY
    if threshold is None:
        return []
    try:
        result = find_similar(image, limit=NEAR_SHOWN, user=user)
    except SimilarityError:  # not searchable after all (a model change meanwhile)
        return []
    return [match for match in result.matches if match.similarity >= float(threshold)]
