"""Real API answers checked against the OpenAPI schema, strictly: every object the schema declares refuses
properties it does not name, so a field the schema misses (untyped, or leaked) fails as a wrong type does.

``assert_matches_schema(response)`` finds the operation by the request's method and path, takes the schema of
the answer's status and validates the JSON body with ``jsonschema``. The OpenAPI 3.0 dialect is translated
where it differs: ``nullable`` becomes a null alternative, a discriminator's mapping pins each variant's
``kind``.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator


@functools.cache
def openapi() -> dict[str, Any]:
    """The API's OpenAPI document, as ``make schema`` writes it."""
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def _strict(node: Any) -> Any:
    """The schema with OpenAPI 3.0's ``nullable`` as JSON Schema and closed objects."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def _components() -> dict[str, Any]:
    schemas = copy.deepcopy(openapi()["components"]["schemas"])
    for schema in schemas.values():  # jsonschema knows no discriminator: pin each variant's value
        discriminator = schema.get("discriminator")
        for value, ref in (discriminator or {}).get("mapping", {}).items():
            variant = schemas[ref.rsplit("/", 1)[-1]]
            variant["properties"][discriminator["propertyName"]] = {"const": value}
    return {"schemas": _strict(schemas)}


def _operation(method: str, path: str) -> dict[str, Any]:
    # a literal segment beats a parameter: /projects/create/ is not /projects/{id}/
    for template, operations in sorted(openapi()["paths"].items(), key=lambda t: t[0].count("{")):
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return operations[method.lower()]  # type: ignore[no-any-return]
    raise AssertionError(f"the OpenAPI schema has no operation {method} {path}")


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The strict JSON Schema of the answer to ``method path`` with ``status``."""
    responses = _operation(method, path)["responses"]
    response = responses.get(str(status))
    assert response is not None, f"{method} {path} documents no {status} answer"
    if "$ref" in response:
        response = openapi()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response["content"]["application/json"]["schema"]
    return {**_strict(schema), "components": _components()}


def assert_matches_schema(response: Any) -> Any:
    """Validate a test client's JSON answer against the schema of its operation; returns the body."""
    request = response.wsgi_request
    body = response.json()
    schema = response_schema(request.method, request.path, response.status_code)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path)
    )
    assert not errors, f"{request.method} {request.path}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:5]
    )
    return body
