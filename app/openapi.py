"""The OpenAPI document: Litestar's, plus the problem details, security, bodies and the
input constraints it omits, so that what it allows is what the server accepts."""

from __future__ import annotations

import copy
import typing
from typing import Any

from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from app.http import _long_by_design as long_by_design
from app.ids import MAX_ID
from app.labs.schemas import SLUG_PATTERN as SLUG
from app.models.schemas import MODEL_REF_PATTERN as MODEL_REF
from app.pagination import CURSOR_PATTERN
from app.plans.schemas import POLICY_ID_PATTERN
from app.urls import check_http_url

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
    206: "the `Range` asked for, as `Content-Range` says",
    304: "unchanged: the `If-None-Match` given still matches the ETag (no body)",
    400: "the body could not be decoded (not UTF-8, not JSON, nested too deeply)",
    401: "no token where one is needed, or a token that is unknown, revoked or expired",
    403: "signed in, but the role does not allow this",
    404: "no such object, or one the caller may not see",
    409: "a stale version, or a move the object's state does not allow now",
    413: "the body is larger than this route accepts",
    416: "the `Range` lies outside the file",
    422: "a parameter or body field is invalid, or names something that does not exist; "
         "`errors` names it",
    429: "too many requests; `Retry-After` says when to retry",
    503: "the request ran past its time budget; retry (`Retry-After`)",
}
NO_BODY = {304}

# --- Input constraints the server enforces -------------------------------------------------
#
# JSON Schema patterns are ECMA-262; these use only what Python's `re` reads the same way.
# Every text input refuses NUL (PostgreSQL cannot store one; app/http.py), so a string
# with no tighter pattern, enum or format gets this one.
NO_NUL = r"^[^\u0000]*$"
# A path segment: no "/" (it would be another route), not "." or ".." (clients resolve them).
SEGMENT = r"^(?!\.\.?$)[^/\u0000]{1,255}$"
# app/urls.py check_http_url: http(s), a host, a port Python can read, no whitespace or
# control characters (Python's str.isspace, which also takes U+001C-U+001F and U+0085).
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
HTTP_URL = (r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::" + _PORT + r")?"
            r"(?:[/?#][^\s\u0000-\u001f\u007f\u0085]*)?$")
# Search cursors carry the sort and its key (app/incidents/search.py): only the server can
# make one for a given query; the document says so and keeps to their alphabet.
SEARCH_CURSOR = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{0,400}$",
                 "description": "opaque: `next_cursor` of the previous page of the same "
                                "query and sort; any other value answers 422"}

# A search query in its plain form: 1 to 16 words (app/incidents/search.py parse_query
# also reads "phrases", OR, NOT and -word, and refuses a query with no word to look for,
# an unclosed quote or a dangling OR: a grammar, not a regular expression).
_WORD = r"(?!(?:OR|NOT)(?: |$))[A-Za-z0-9]{1,30}"
SEARCH_WORDS = rf"^ ?{_WORD}(?: {_WORD}){{0,15}} ?$"
SEARCH_WORDS_WHY = ("words to look for (at most 16); the server also reads \"phrases\", "
                    "`OR` between items and `NOT` or a leading `-` to exclude (README, "
                    "\"Search\"); a query it cannot read answers 422 naming `q`")

# Validators pydantic cannot describe, and what they accept as JSON Schema.
VALIDATORS: dict[Any, dict] = {check_http_url: {"pattern": HTTP_URL}}


def _parameter_rules() -> dict[tuple[str, str], dict]:
    from app.incidents.service import taxonomy

    exists = "; one that does not exist (or that you may not see) answers 422"
    # An empty filter or cursor is the same as none.
    return {
        ("query", "cursor"): {"type": "string", "pattern": "^$|" + CURSOR_PATTERN,
                              "description": "`next_cursor` of the previous page"},
        ("query", "lab"): {"type": "string", "pattern": "^$|" + SLUG,
                           "description": "a lab's slug" + exists},
        ("query", "model"): {"type": "string", "pattern": "^$|" + MODEL_REF,
                             "description": "`LAB/MODEL` or a model id" + exists},
        ("query", "harm_type"): {"type": "string", "enum": sorted(taxonomy()[1])},
        ("query", "q"): {"type": "string", "maxLength": 500, "pattern": SEARCH_WORDS,
                         "description": SEARCH_WORDS_WHY},
        # The transparency log's optional bounds (Litestar drops `minimum: 0` from an
        # optional integer): a negative one answers 422.
        ("query", "before"): {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        ("query", "end"): {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        ("path", "slug"): {"type": "string", "pattern": SLUG},
        ("path", "policy_id"): {"type": "string", "pattern": POLICY_ID_PATTERN},
    }


IF_MATCH = {
    "name": "If-Match", "in": "header",
    "description": "The version being edited, as an ETag (`\"3\"`). Required unless the "
                   "body carries `version` (which then wins): a write without either answers "
                   "422, a stale one 409.",
}
IF_MATCH_REQUIRED = {**IF_MATCH, "required": True, "schema": {
    "type": "string", "pattern": r'^(?:W/)?"?0*[1-9][0-9]{0,17}"?$'}}
IF_MATCH_OPTIONAL = {**IF_MATCH, "required": False, "schema": {
    "type": "string", "pattern": r'^(?:\*|(?:W/)?"?0*[1-9][0-9]{0,17}"?)?$'},
    "description": "Optional: the version you saw; a stale one answers 409."}
IF_NONE_MATCH = {
    "name": "If-None-Match", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": r"^[^\u0000-\u0008\u000a-\u001f\u007f]*$"},
    "description": "ETags you hold (or `*`): a match answers 304 with no body.",
}

# The checkpoint file download (app/checkpoints/api.py): bytes, ranges and its ETag.
FILE_ROUTE = "/api/v1/checkpoints/{checkpoint_id}/files/{name}"
FILE_STATUSES = {"GET": {206, 304, 403, 416}, "HEAD": {304, 403}}
# Routes that answer a file's bytes (the remote worker's download too: app/evals).
DOWNLOADS = {FILE_ROUTE, "/api/v1/worker/jobs/{run_id}/files/{checkpoint_id}/{name}"}

CHECKPOINT_FORM_FILES = {
    "type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"},
    "description": "parts with distinct file names: config.json, model*.safetensors, "
                   "tokenizer files (read on upload: any other file answers 422)"}


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
    if handler.opt.get("etag") and method in ("GET", "HEAD"):
        out.add(304)
    if path == FILE_ROUTE:
        out |= FILE_STATUSES.get(method, set())
    if not long_by_design(handler):
        out.add(503)  # past the request budget (app/http.py request_budget_middleware)
    out |= set(handler.opt.get("problems", ()))
    return out


def document_problems(app, doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    _input_schemas(app, doc)
    rules = _parameter_rules()
    ref = {"$ref": "#/components/schemas/Problem"}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = doc.get("paths", {}).get(route.path_format or "/")
        if not item:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods - {"OPTIONS"}:
                op = item.get(method.lower())
                if op is None:
                    continue
                if method == "POST" and route.path_format == "/api/v1/checkpoints":
                    op["requestBody"] = _checkpoint_form(doc)
                limit = getattr(handler, "request_max_body_size", None)
                if isinstance(limit, int) and "requestBody" in op:
                    # A whole-body limit no field's maxLength adds up to (JSON escapes,
                    # whitespace): said here, answered 413.
                    op["requestBody"]["description"] = (
                        f"at most {limit} bytes as sent (413 beyond)")
                responses = op.setdefault("responses", {})
                if handler.opt.get("media_types") and "200" in responses:
                    responses["200"]["content"] = {
                        media: {"schema": {"type": "string"} if media.startswith("text/")
                                else {}} for media in handler.opt["media_types"]}
                if route.path_format in DOWNLOADS and "200" in responses:
                    _file_responses(method, responses)
                responses.pop("400", None)  # Litestar's default body is not what we send
                for status in sorted(_statuses(method, route.path_format, handler, op)):
                    if str(status) in responses and status < 400:
                        continue
                    answer = {"description": WHY[status]}
                    if method != "HEAD" and status not in NO_BODY:
                        answer["content"] = {PROBLEM: {"schema": ref}} if status >= 400 \
                            else responses.get("200", {}).get("content", {})
                    responses[str(status)] = answer
                public = bool(handler.opt.get("public"))
                op["security"] = [{}, {"bearer": []}] if public else [{"bearer": []}]
                if method in WRITES and _has_version(doc, op):
                    optional = handler.opt.get("version") == "optional"
                    op.setdefault("parameters", []).append(
                        IF_MATCH_OPTIONAL if optional else IF_MATCH_REQUIRED)
                if method in ("GET", "HEAD") and (handler.opt.get("etag")
                                                  or route.path_format == FILE_ROUTE):
                    op.setdefault("parameters", []).append(IF_NONE_MATCH)
                _constrain_parameters(route.path_format, op, rules)
    _exact_integers(doc)


def _file_responses(method: str, responses: dict) -> None:
    headers = {"ETag": {"schema": {"type": "string"}, "description": "the file's SHA-256"},
               "X-Content-SHA256": {"schema": {"type": "string"}}}
    responses["200"]["headers"] = headers
    if method == "GET":
        responses["200"]["content"] = {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}
        # Object storage (STAGEGATE_BLOB_URL): the file is at a presigned URL of the bucket.
        responses["302"] = {
            "description": "the file is at `Location`, a presigned URL of the object store "
                           "valid for STAGEGATE_BLOB_URL_TTL_S seconds (it answers Range "
                           "itself); only with object storage, see the `redirect` parameter",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}},
                        "X-Content-SHA256": {"schema": {"type": "string"}}}}


# --- Request bodies: pydantic's own schema of what it validates ------------------------------


class _InputSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, plus what our AfterValidators accept (VALIDATORS)."""

    def function_after_schema(self, schema):
        out = super().function_after_schema(schema)
        extra = VALIDATORS.get(schema.get("function", {}).get("function"))
        return {**out, **extra} if extra and "$ref" not in out else out


def _models_in(annotation, found: set) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                _models_in(field.annotation, found)
        return
    for arg in typing.get_args(annotation):
        _models_in(arg, found)


def _litestar_name(cls: type, names: set[str]) -> str | None:
    """The component name Litestar gave `cls`: its module path and name, less the prefix
    shared by every class of that name (litestar/_openapi/datastructures.py)."""
    key = [*cls.__module__.split("."), cls.__qualname__.replace(".<locals>.", ".")]
    for i in range(len(key)):
        name = "_".join(key[i:])
        if name in names:
            return name
    return None


def _refs(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)
    return out


def _input_schemas(app, doc: dict) -> None:
    """Litestar writes its own schema of a pydantic body and drops what it does not read
    (patterns, `additionalProperties: false` of extra="forbid", validators): a client
    trusting it would be refused. Every JSON body's schema is pydantic's instead."""
    schemas = doc["components"]["schemas"]
    bodies: dict[str, type] = {}  # Litestar's component name -> the body's model
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            model = getattr(data, "annotation", None)
            if isinstance(model, type) and issubclass(model, BaseModel):
                name = _litestar_name(model, set(schemas))
                if name:
                    bodies[name] = model
    models: set[type] = set()
    for model in bodies.values():
        _models_in(model, models)
    ordered = sorted(models, key=lambda m: (m.__module__, m.__qualname__))
    keys, top = models_json_schema([(m, "validation") for m in ordered],
                                   ref_template="#/components/schemas/{model}",
                                   schema_generator=_InputSchema)
    # A component also read in an answer keeps Litestar's schema; the body gets its own.
    answers = set()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict):
                _refs({k: v for k, v in op.items() if k != "requestBody"}, answers)
    seen = set()
    while answers - seen:
        name = (answers - seen).pop()
        seen.add(name)
        _refs(schemas.get(name, {}), answers)
    rename = {}
    for model in ordered:
        generated = keys[(model, "validation")]["$ref"].rsplit("/", 1)[1]
        name = _litestar_name(model, set(schemas)) or generated
        rename[generated] = f"{name}Input" if name in answers else name
    defs = _retarget(top.get("$defs", {}), rename)
    known = _known()
    for generated, schema in defs.items():
        _known_values(schema.get("properties", {}), known)
        _constrain_strings(schema)
        schemas[rename[generated]] = schema
    for item in doc.get("paths", {}).values():
        for op in item.values():
            body = op.get("requestBody", {}) if isinstance(op, dict) else {}
            schema = body.get("content", {}).get("application/json", {}).get("schema", {})
            name = schema.get("$ref", "").rsplit("/", 1)[-1]
            if name in bodies:
                generated = keys[(bodies[name], "validation")]["$ref"].rsplit("/", 1)[1]
                schema["$ref"] = f"#/components/schemas/{rename[generated]}"


def _known() -> dict[str, list[str]]:
    """Values read from data files at start-up: harm types (the taxonomy), policy ids
    (policies/) and evaluation suites; any other answers 422 (a suite: 404)."""
    from app.evals.service import suites
    from app.incidents.service import taxonomy
    from app.norms.loader import load_policies

    return {"harm_types": sorted(taxonomy()[1]), "policies": sorted(load_policies()),
            "suites": sorted(suites())}


def _known_values(properties: dict, known: dict[str, list[str]]) -> None:
    if "harm_types" in properties:
        _items(properties["harm_types"])["items"] = {"type": "string",
                                                     "enum": known["harm_types"]}
    if "policies" in properties:
        _items(properties["policies"])["items"] = {"type": "string",
                                                   "enum": known["policies"]}
    if "policy" in properties:
        branch = _items(properties["policy"], "string")
        branch.pop("pattern", None)
        branch["enum"] = known["policies"]
    if "suite" in properties and "checkpoint_id" in properties:  # a run's suite
        properties["suite"].pop("pattern", None)
        properties["suite"]["enum"] = known["suites"]


def _items(schema: dict, kind: str = "array") -> dict:
    """The `kind` branch of `X` or `X | None` (the array of `list[X]`)."""
    for option in schema.get("anyOf", []):
        if option.get("type") == kind:
            return option
    return schema


def _retarget(node: Any, rename: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[1]
                value = f"#/components/schemas/{rename.get(name, name)}"
            out[key] = _retarget(value, rename)
        return out
    if isinstance(node, list):
        return [_retarget(value, rename) for value in node]
    return node


def _constrain_strings(node: Any) -> None:
    """Text without a tighter rule refuses NUL (app/http.py): say so."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not any(
                key in node for key in ("pattern", "enum", "const", "format")):
            node["pattern"] = NO_NUL
        if node.get("type") == "object" and node.get("additionalProperties") is True:
            node["propertyNames"] = {"pattern": NO_NUL}
        for value in node.values():
            _constrain_strings(value)
    elif isinstance(node, list):
        for value in node:
            _constrain_strings(value)


def _checkpoint_form(doc: dict) -> dict:
    from app.checkpoints.schemas import CheckpointCreate

    fields = copy.deepcopy(CheckpointCreate.model_json_schema(
        mode="validation", schema_generator=_InputSchema))
    # A form field is text or absent, never null.
    fields["properties"] = {name: _not_null(schema)
                            for name, schema in fields["properties"].items()}
    _constrain_strings(fields)
    fields["properties"]["model"]["pattern"] = MODEL_REF
    fields["properties"]["files"] = CHECKPOINT_FORM_FILES
    fields["required"] = sorted({*fields.get("required", []), "files"})
    fields.pop("title", None)
    fields["additionalProperties"] = False
    fields["description"] = ("the text fields first (`model`: `LAB/MODEL` of a model of your "
                             "lab, `name`, ...), then the files as parts named `files`; a "
                             "file part before `model` and `name` answers 422")
    return {"required": True, "content": {"multipart/form-data": {"schema": fields}}}


# --- Parameters -------------------------------------------------------------------------


def _constrain_parameters(path: str, op: dict, rules: dict) -> None:
    for param in op.get("parameters", []):
        if param["in"] == "header":
            continue
        schema = _not_null(param.get("schema", {}))
        where, name = param["in"], param["name"]
        if where == "query" and name == "cursor" and path.startswith("/api/v1/incidents") \
                and path != "/api/v1/incidents/export":
            schema = dict(SEARCH_CURSOR)
        elif (where, name) in rules:
            schema = {**{k: v for k, v in schema.items() if k == "default"},
                      **rules[(where, name)]}
        elif schema.get("type") == "string" and not any(
                key in schema for key in ("pattern", "enum", "format")):
            schema = {**schema, "pattern": SEGMENT if where == "path" else NO_NUL}
        if "description" in schema and "description" not in param:
            param["description"] = schema.pop("description")
        schema.pop("description", None)
        param["schema"] = schema


def _not_null(schema: dict) -> dict:
    """A query parameter is absent or a string: Litestar's `X | null` is just X."""
    for key in ("oneOf", "anyOf"):
        options = [s for s in schema.get(key, []) if s.get("type") != "null"]
        if len(options) == 1 and key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return {**options[0], **rest}
    if isinstance(schema.get("type"), list):
        types_ = [t for t in schema["type"] if t != "null"]
        out = {**schema, "type": types_[0] if len(types_) == 1 else types_}
        if "enum" in out:
            out["enum"] = [v for v in out["enum"] if v is not None]
        return out
    return dict(schema)


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

