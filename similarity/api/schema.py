"""The OpenAPI schema documents every status an operation can answer, not only success.

drf-spectacular documents the success status of an operation (and what ``extend_schema``
names). A client generated from the schema then treats a 404 for an id that does not exist,
a 400 for a malformed parameter or a 429 from the throttle as unexpected. This schema class
adds those answers to every operation, with the error body's shape (``detail`` for people,
``code`` for scripts; a validation error names the fields), where the operation can give
them: 400 when it takes parameters or a body, 401/403 always (every API view needs an
active user), 404 when its path names an object, 413 for uploads, 429 when throttled.

Our views use it whatever the host's DEFAULT_SCHEMA_CLASS; a host may name it as its
default (``"DEFAULT_SCHEMA_CLASS": "similarity.api.schema.AutoSchema"``) for its own views.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "description": "`detail` says why for a person, `code` for a script; a validation "
                   "error names each field with its messages. Some errors add fields "
                   "(`insight`: the analysis' progress).",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}

ERRORS = {
    "400": "The request is malformed: a parameter or a field is refused (the body says which)",
    "401": "Not authenticated",
    "403": "Authenticated, but not allowed (inactive user, or not an editor)",
    "404": "No such object, or not one this user may see (the same answer)",
    "413": "The upload is larger than the site accepts (an operation that takes files)",
    "429": "Too many requests: the search or upload rate was exceeded (see Retry-After)",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the error answers each operation can give."""

    def _get_response_bodies(self, direction: openapi.Direction = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code not in responses:
                content: dict[str, Any] = {"application/json": {"schema": ERROR_BODY}}
                if code == "404":
                    # an id no route matches (say, one with a "/") never reaches the API:
                    # the site's own not-found page answers
                    content["text/html"] = {"schema": {"type": "string"}}
                responses[code] = {"description": ERRORS[code], "content": content}
        return responses

    def _error_codes(self) -> list[str]:
        codes = ["401", "403"]
        writes = self.method in ("POST", "PUT", "PATCH")
        if writes or self._has_query_parameters():
            codes.append("400")
        if "{" in self.path:
            codes.append("404")
        if writes and self._takes_files():
            codes.append("413")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return sorted(codes)

    def _has_query_parameters(self) -> bool:
        try:
            return any(p.get("in") == "query" for p in self._get_parameters())
        except Exception:  # parameters that cannot be resolved without a request
            return False

    def _takes_files(self) -> bool:
        try:
            return "multipart/form-data" in self.map_parsers()
        except Exception:
            return False


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """A drf-spectacular postprocessing hook: OpenAPI links from each list and create
    operation to the detail operation of the same collection (``/things/`` ->
    ``/things/{id}/``), so a client (or a stateful test) can follow ids it was given.

    Name it in SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] beside drf-spectacular's own
    ``postprocess_schema_enums`` (the demo site does).
    """
    paths = result.get("paths", {})
    for path, operations in paths.items():
        for detail_path, detail_ops in paths.items():
            if not (detail_path.startswith(path) and detail_path != path):
                continue
            rest = detail_path[len(path):]
            if not (rest.startswith("{") and rest.endswith("}/") and rest.count("{") == 1):
                continue
            name = rest[1:-2]
            target = (detail_ops.get("get") or {}).get("operationId")
            if not target:
                continue
            listing = (operations.get("get") or {}).get("responses", {}).get("200")
            first = _first_item(listing, result) if listing is not None else None
            if first is not None:
                listing.setdefault("links", {})["detail"] = {
                    "operationId": target,
                    "parameters": {name: f"$response.body#{first}/{name}"},
                    "description": "The first item of the list, in full",
                }
            created = (operations.get("post") or {}).get("responses", {}).get("201")
            if created is not None:
                created.setdefault("links", {})["detail"] = {
                    "operationId": target, "parameters": {name: f"$response.body#/{name}"},
                    "description": "What was created, read back",
                }
    return result


def _first_item(response: dict[str, Any], result: dict[str, Any]) -> str | None:
    """The JSON pointer of a list answer's first item: ``/results/0`` of a page, ``/0`` of
    a bare array; None for anything else."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    schemas = result.get("components", {}).get("schemas", {})
    ref = schema.get("$ref", "")
    if ref:
        schema = schemas.get(ref.rsplit("/", 1)[-1], {})
    if "results" in schema.get("properties", {}):
        return "/results/0"
    if schema.get("type") == "array":
        return "/0"
    return None
