"""API pagination (its own module: DRF imports it while loading its views)."""

from rest_framework.pagination import LimitOffsetPagination


class BoundedPagination(LimitOffsetPagination):
    """?limit= is capped: no request can ask for a 100k-row page."""

    default_limit = 50
    max_limit = 200
