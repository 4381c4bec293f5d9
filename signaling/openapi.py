"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from .http import Api

_ERROR_SCHEMA = {"type": "object", "required": ["error", "message"],
                 "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    defs.update(schema.pop("$defs", {}))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        defs[tp.__name__] = schema
        return {"$ref": f"#/components/schemas/{tp.__name__}"}
    return schema


def build_openapi(api: Api, extra_paths: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    defs: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for r in api.routes:
        op: dict[str, Any] = {"summary": r.summary, "operationId": r.handler.__name__, "tags": list(r.tags)}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", r.path)]
        params += [{"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                   for n, d in r.query.items()]
        if params:
            op["parameters"] = params
        if not r.public:
            op["security"] = [{"bearer": []}]
        if r.roles:
            op["x-roles"] = sorted(role.value for role in r.roles)
        op["x-access"] = r.access.value  # the condition beyond the role (docs/security.md)
        if r.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _schema(r.body, defs)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(r.response, defs)}}
        responses: dict[str, Any] = {str(r.status): ok if r.status != 204 else {"description": "No content"}}
        if r.handler.__name__ == "take_next":
            responses["204"] = {"description": "The queue is empty"}
        for code in sorted({*r.errors, *(() if r.public else (401,)), *((422,) if r.body else ())}):
            responses[str(code)] = {"description": "Error",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        op["responses"] = responses
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for path, ops in (extra_paths or {}).items():
        paths.setdefault(path, {}).update(ops)
    return {
        "openapi": "3.1.0",
        "info": {"title": "nettlege", "version": "1",
                 "description": "Video and messaging consultations for Norwegian municipal health services."},
        "paths": paths,
        "components": {"schemas": defs,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
