"""The OpenAPI document: Litestar's, plus the problem details, security and bodies it omits."""

from __future__ import annotations

from typing import Any

from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from app.ids import MAX_ID

PROBLEM = "application/problem+json"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each offending field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "reason"],
            "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}},
    },
    "additionalProperties": True,
}

WHY = {
    400: "the body could not be decoded (not UTF-8, not JSON, nested too deeply)",
    401: "no token where one is needed, or a token that is unknown, revoked or expired",
    403: "signed in, but the role does not allow this",
    404: "no such object, or one the caller may not see",
    409: "a stale version, or a move the object's state does not allow now",
    413: "the body is larger than this route accepts",
    422: "a parameter or body field is invalid; `errors` names it",
    429: "too many requests; `Retry-After` says when to retry",
}

IF_MATCH = {
    "name": "If-Match", "in": "header", "required": False,
    "schema": {"type": "string", "maxLength": 64},
    "description": "The version being edited, as an ETag (`\"3\"`). A write must carry it "
                   "here or as the body's `version`; a stale one answers 409.",
}

CHECKPOINT_FORM = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["model", "name", "files"],
        "properties": {
            "model": {"type": "string", "description": "`LAB/MODEL`"},
            "name": {"type": "string"},
            "access_level": {"type": "string"},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": "safetensors weights, config.json, tokenizer files"},
        }}}},
}


class ProblemAwareJson(JsonRenderPlugin):
    """Serves /schema/openapi.json completed by `document_problems` (once per app)."""

    def render(self, request, openapi_schema: dict[str, Any]) -> bytes:
        if "Problem" not in openapi_schema.get("components", {}).get("schemas", {}):
            document_problems(request.app, openapi_schema)
        return super().render(request, openapi_schema)


def _statuses(method: str, path: str, handler, op: dict) -> set[int]:
    public = bool(handler.opt.get("public"))
    has_body = method in WRITES and ("requestBody" in op or method != "DELETE")
    has_input = has_body or bool(op.get("parameters"))
    out = {401}  # a bad token is refused on every route, public ones included
    if not public or method in WRITES:
        out.add(403)
    if "{" in path or method in WRITES:
        out.add(404)
    if method in WRITES:
        out.add(409)
    if has_body:
        out |= {400, 413}
    if has_input:
        out.add(422)
    out |= set(handler.opt.get("problems", ()))
    return out


def document_problems(app, doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = doc.get("paths", {}).get(route.path_format or "/")
        if not item:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                op = item.get(method.lower())
                if op is None:
                    continue
                if method == "POST" and route.path_format == "/api/v1/checkpoints":
                    op["requestBody"] = CHECKPOINT_FORM
                responses = op.setdefault("responses", {})
                if handler.opt.get("media_types") and "200" in responses:
                    responses["200"]["content"] = {
                        media: {"schema": {"type": "string"} if media.startswith("text/")
                                else {}} for media in handler.opt["media_types"]}
                responses.pop("400", None)  # Litestar's default body is not what we send
                for status in sorted(_statuses(method, route.path_format, handler, op)):
                    responses[str(status)] = {"description": WHY[status],
                                              "content": {PROBLEM: {"schema": ref}}}
                public = bool(handler.opt.get("public"))
                op["security"] = [{}, {"bearer": []}] if public else [{"bearer": []}]
                if method in WRITES and _has_version(doc, op):
                    op.setdefault("parameters", []).append(IF_MATCH)
    _exact_integers(doc)


def _has_version(doc: dict, op: dict) -> bool:
    schema = (op.get("requestBody", {}).get("content", {})
              .get("application/json", {}).get("schema", {}))
    if "$ref" in schema:
        schema = doc["components"]["schemas"].get(schema["$ref"].rsplit("/", 1)[-1], {})
    return "version" in schema.get("properties", {})


def _exact_integers(node: Any) -> None:
    """Litestar writes integer bounds as floats; 2**63-1 as a float is 2**63, one past the
    largest id, so a client trusting the document would be refused."""
    if isinstance(node, dict):
        for key in ("maximum", "minimum"):
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = MAX_ID if value >= MAX_ID else int(value)
        for value in node.values():
            _exact_integers(value)
    elif isinstance(node, list):
        for value in node:
            _exact_integers(value)
