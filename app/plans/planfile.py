"""Plans written as YAML or JSON files; validation errors point at the line and field."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from app.errors import Invalid, field_path
from app.plans.schemas import PlanCreate
from app.safeyaml import line_of, load_yaml

MAX_PLAN_FILE_BYTES = 1024 * 1024


def load_plan_file(path: str | Path, *, file: bool = True) -> PlanCreate:
    """Parse and validate; JSON is read by the YAML parser too, so both get line numbers."""
    path = Path(path)
    if path.stat().st_size > MAX_PLAN_FILE_BYTES:
        raise Invalid(f"{path}: larger than {MAX_PLAN_FILE_BYTES} bytes", field="file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{path}: not UTF-8 text", field="file") from None
    try:
        # Composing builds one node per alias (nothing expands); a syntax error is
        # reported here with its line.
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise Invalid(f"{where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}",
                      field="file") from None
    try:
        # Refuses aliases, anchors and deep nesting before anything is expanded.
        data = load_yaml(text, field="file", max_bytes=MAX_PLAN_FILE_BYTES)
    except Invalid as exc:
        detail = re.sub(r"^line (\d+): ", lambda m: f"{path}:{m[1]}: ", exc.detail)
        raise Invalid(detail if detail != exc.detail else f"{path}: {exc.detail}",
                      field="file") from None
    if not isinstance(data, dict):
        raise Invalid(f"{path}: a plan file holds a mapping (model, title, stages)",
                      field="file")
    # --draft wins over the file's own `file: true`; otherwise the file decides.
    if file:
        data.setdefault("file", True)
    else:
        data["file"] = False
    try:
        return PlanCreate.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            line = line_of(node, err["loc"])
            lines.append(f"{path}:{line or '?'}: {field_path(err['loc'])}: {err['msg']}")
        first = exc.errors()[0]
        raise Invalid("\n".join(lines), field=field_path(first["loc"])) from None
