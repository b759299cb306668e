"""The published OpenAPI 3.1 document of an app (``/api/openapi.json``): what
FastAPI generates from the routes, completed with what it cannot know.

- ``components.schemas`` the app names (the official Beacon schemas, which the
  Beacon operations reference);
- every operation's error answers: ``4XX`` and ``5XX`` with the error document
  of the API its path belongs to (the one error handler's,
  :mod:`genomenode.web.responses`), in place of FastAPI's ``422``, which no
  route sends (a request that does not validate is a 400).

Routes describe their own parameters, bodies and answers (``openapi_extra`` or
``responses`` where they are declared); this module only adds what every
operation shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ERROR_SCHEMAS", "SERVICE_INFO_SCHEMA", "answers", "publish_openapi"]

#: The error documents of the APIs the one error handler knows, by path prefix
#: (the first matching prefix wins; ``""`` is the rest).
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "/htsget": {
        "type": "object",
        "required": ["htsget"],
        "properties": {
            "htsget": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "/ga4gh/drs": {
        "type": "object",
        "description": "DRS Error",
        "required": ["msg", "status_code"],
        "properties": {
            "msg": {"type": "string"},
            "status_code": {"type": "integer"},
        },
    },
    "": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
    },
}


#: GA4GH service-info 1.0 (what every service-info route answers; the APIs add
#: fields of their own, which the schema allows).
SERVICE_INFO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "type", "organization", "version"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "type": {
            "type": "object",
            "required": ["group", "artifact", "version"],
            "properties": {
                "group": {"type": "string"},
                "artifact": {"type": "string"},
                "version": {"type": "string"},
            },
        },
        "description": {"type": "string"},
        "organization": {
            "type": "object",
            "required": ["name", "url"],
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "version": {"type": "string"},
        "environment": {"type": "string"},
    },
}


def answers(
    description: str, schema: Mapping[str, Any], media_type: str = "application/json"
) -> dict[str, Any]:
    """``openapi_extra`` of an operation whose 200 is ``schema``."""
    return {
        "responses": {
            "200": {
                "description": description,
                "content": {media_type: {"schema": dict(schema)}},
            }
        }
    }


def _error_schema(path: str, errors: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    for prefix, schema in errors.items():
        if path.startswith(prefix):
            return schema
    return ERROR_SCHEMAS[""]


def _complete(
    document: dict[str, Any],
    components: Mapping[str, Any],
    errors: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    for path, operations in document.get("paths", {}).items():
        schema = _error_schema(path, errors)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, what in (("4XX", "Refused"), ("5XX", "Failed")):
                responses.setdefault(
                    status,
                    {
                        "description": f"{what}: the error document",
                        "content": {"application/json": {"schema": schema}},
                    },
                )
    # FastAPI's validation-error models are referenced by no operation now.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if not schemas:
        document["components"].pop("schemas")
    if not document["components"]:
        document.pop("components")
    return document


def publish_openapi(
    app: FastAPI,
    *,
    components: Mapping[str, Any] | None = None,
    errors: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Make ``app.openapi`` (the document served at its ``openapi_url``) the
    completed document, built once on first use.

    Parameters
    ----------
    components
        ``components.schemas`` to add (name → schema).
    errors
        The error documents of APIs other than the built-in ones
        (:data:`ERROR_SCHEMAS`), by path prefix (``{"/api": <beaconErrorResponse>}``).
    """
    every_error = {**dict(errors or {}), **ERROR_SCHEMAS}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                servers=app.servers,
            )
            app.openapi_schema = _complete(
                document, dict(components or {}), every_error
            )
        return app.openapi_schema

    method: Callable[[], dict[str, Any]] = openapi
    app.openapi = method  # type: ignore[method-assign]
