"""The errors the app's own functions raise for a person to read.

Search, saved searches, actions and the insight stage refuse requests with these; the
doors (pages, the API, Wagtail's admin) turn them into HTTP answers. So nothing below the
doors knows about HTTP: it raises ``NotFound``, never ``Http404``, and the same function
serves a page, an API call, a command and a task.
"""

from __future__ import annotations

from typing import Any


class SimilarityError(Exception):
    """A request that cannot be answered; ``str()`` says why, for a person.

    ``code`` names the kind for scripts (the API's ``"code"``); ``http_status`` is what
    the doors answer with.
    """

    code = "invalid"
    http_status = 400

    def extra(self) -> dict[str, Any]:
        """More fields for the API's error body (``detail`` and ``code`` always come)."""
        return {}

    def headers(self) -> dict[str, str]:
        """Headers of the answer (``Retry-After`` for a busy server, say)."""
        return {}


class NotFound(SimilarityError):
    """Not there, or not visible to this user: the same answer, so ids reveal nothing."""

    code = "not_found"
    http_status = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)
