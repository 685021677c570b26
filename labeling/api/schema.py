"""The OpenAPI schema's error responses: each operation documents the errors ``labeling.api.errors`` can answer.

Views declare their success responses (``extend_schema``); ``ErrorDocumentingAutoSchema`` adds the errors
from what an operation is: a 400 where there is a body or a parameter to get wrong, a 401 unless anonymous
callers are allowed, a 403 (permission, or CSRF for a session's unsafe request), a 404 where the path names
an object, a 409 for a write that can clash with the current state, a 429 where failed logins are throttled,
and a 502 and a 503 with Retry-After everywhere (the image server down, the database restarting). A status the view declares itself is kept.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry, ResolvedComponent

ERROR = {
    "type": "object",
    "description": "An error: ``detail`` says what went wrong; ``field`` names the part of the request at fault.",
    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": (
        "A request that does not fit: ``detail`` and ``field`` for a domain error, or the messages of each "
        "invalid field by its name (a list of strings, or an object of them for a nested field)."
    ),
    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
    "additionalProperties": {},
}

#: status -> (response component, description, schema component)
RESPONSES = {
    "400": ("BadRequest", "The request is invalid.", "ValidationError"),
    "401": ("Unauthorized", "No valid credentials (a missing, unknown or expired token).", "Error"),
    "403": ("Forbidden", "The caller may not do this (its role, or a missing CSRF token).", "Error"),
    "404": ("NotFound", "No such object, or one the caller may not know of.", "Error"),
    "409": ("Conflict", "The action clashes with the current state.", "Error"),
    "429": ("TooManyRequests", "Too many failed logins: wait for Retry-After seconds.", "Error"),
    "502": (
        "ImageServerUnavailable",
        "The image server cannot be reached or did not answer in time (an operation that needs images or "
        "imports them); nothing was saved, retry after Retry-After.",
        "Error",
    ),
    "503": (
        "ServiceUnavailable",
        "The database is unavailable for a moment (a restart, a failover): retry after Retry-After. A change "
        "is saved whole or not at all (the commit may have happened just before the connection was lost); "
        "the same reading sent again is answered with the stored one.",
        "Error",
    ),
}


def _component(registry: ComponentRegistry, name: str, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    component = ResolvedComponent(name=name, type=kind, schema=schema, object=name)
    registry.register_on_missing(component)
    return component.ref


class ErrorDocumentingAutoSchema(AutoSchema):
    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: ComponentRegistry
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for code in self._error_codes(operation):
            name, description, schema_name = RESPONSES[code]
            schema = ERROR if schema_name == "Error" else VALIDATION_ERROR
            schema_ref = _component(registry, schema_name, ResolvedComponent.SCHEMA, schema)
            response = {"description": description, "content": {"application/json": {"schema": schema_ref}}}
            operation["responses"].setdefault(
                code, _component(registry, name, ResolvedComponent.RESPONSE, response)
            )
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        parameters = operation.get("parameters", [])
        anonymous = {} in operation.get("security", [{}])
        write = self.method != "GET"
        codes = []
        if write or parameters:
            codes.append("400")
        if not anonymous:
            codes.append("401")
        if write or not anonymous:
            codes.append("403")
        if any(p["in"] == "path" for p in parameters):
            codes.append("404")
        if write:
            codes.append("409")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        codes += ["502", "503"]
        return codes


def close_reader_project_view(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """A spectacular post-processing hook: the reader's view of a project admits no other field, so that a
    full project answer matches exactly one half of the project endpoints' ``oneOf`` (it matched both)."""
    schema = result.get("components", {}).get("schemas", {}).get("ProjectReaderOutput")
    if schema is not None:
        schema["additionalProperties"] = False
    return result
