"""Parsing YAML and JSON a client sends: no aliases or anchors, bounded size and depth.

`yaml.safe_load` builds no objects, but it still expands aliases: 514 bytes of nested
`&a [*b, *b, ...]` become megabytes ("billion laughs"). The event stream is scanned
first, so an alias, an anchor or a document nested too deep is refused before any
node is built.
"""

from __future__ import annotations

import json

import yaml

from app.errors import Invalid

# Deep enough for any model-index, plan or template; shallow enough that recursive
# consumers (pydantic, json.dumps, our own walkers) never approach Python's limit.
MAX_DEPTH = 32
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line(event) -> str:
    mark = getattr(event, "start_mark", None)
    return f"line {mark.line + 1}: " if mark else ""


def load_yaml(text: str, *, field: str, max_bytes: int, max_depth: int = MAX_DEPTH):
    """The parsed document, or Invalid naming `field` (and the line) if it is refused."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise Invalid(f"{size} bytes of YAML; at most {max_bytes} are accepted", field=field,
                      limit=max_bytes)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise Invalid(f"{_line(event)}YAML aliases (*{event.anchor}) are not "
                              "accepted; write the value out", field=field)
            if getattr(event, "anchor", None):
                raise Invalid(f"{_line(event)}YAML anchors (&{event.anchor}) are not "
                              "accepted; write the value out", field=field)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise Invalid(f"{_line(event)}nested deeper than {max_depth} levels",
                                  field=field, limit=max_depth)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise Invalid(f"{where}not valid YAML: {getattr(exc, 'problem', None) or exc}",
                      field=field) from None
    except RecursionError:
        raise Invalid(f"nested deeper than {max_depth} levels", field=field) from None


def line_of(node, loc) -> int | None:
    """The 1-based line of the deepest node a path (keys and indexes, as pydantic and
    jsonschema report them) reaches in a composed YAML tree; where the path leaves the
    tree, the line of the last node it reached. For errors that name file:line."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == key]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) \
                and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None

def check_depth(value, *, field: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse JSON-like data (dicts, lists) nested deeper than `max_depth`, iteratively."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise Invalid(f"nested deeper than {max_depth} levels", field=field,
                          limit=max_depth)
        stack.extend((child, depth + 1) for child in children)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str | bytes, *, field: str, max_bytes: int, max_depth: int = MAX_DEPTH):
    """Strict JSON (no NaN/Infinity), bounded in size and depth, or Invalid naming `field`."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise Invalid(f"{size} bytes of JSON; at most {max_bytes} are accepted", field=field,
                      limit=max_bytes)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid(f"nested deeper than {max_depth} levels", field=field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"not valid JSON: {exc}", field=field) from None
    check_depth(value, field=field, max_depth=max_depth)
    return value
