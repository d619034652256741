"""Reading policies/<id>/policy.yaml: JSON Schema, typed check params, file:line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml
from pydantic import BaseModel, ValidationError

from app.errors import Invalid, field_path
from app.norms.checks import CHECKS
from app.safeyaml import line_of
from app.settings import get_settings

POLICY_DIR = Path(__file__).resolve().parent.parent.parent / "policies"
SCHEMA_PATH = POLICY_DIR / "policy.schema.json"
MAX_POLICY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Selector:
    """Which stages a policy or rule speaks about; every key given must hold."""
    access_levels: tuple[str, ...] | None = None
    min_parameter_count: int | None = None
    max_parameter_count: int | None = None
    stages: str = "all"  # all | first | later | final

    @classmethod
    def of(cls, raw: dict | None) -> Selector:
        raw = raw or {}
        levels = raw.get("access_levels")
        return cls(tuple(levels) if levels else None, raw.get("min_parameter_count"),
                   raw.get("max_parameter_count"), raw.get("stages", "all"))

    def matches(self, stage, live_positions: list[int]) -> bool:
        if self.access_levels and stage.access_level not in self.access_levels:
            return False
        count = stage.parameter_count
        if self.min_parameter_count is not None and (count is None or
                                                     count < self.min_parameter_count):
            return False
        if self.max_parameter_count is not None and (count is None or
                                                     count > self.max_parameter_count):
            return False
        if self.stages == "first":
            return bool(live_positions) and stage.position == live_positions[0]
        if self.stages == "later":
            return bool(live_positions) and stage.position != live_positions[0]
        if self.stages == "final":
            return bool(live_positions) and stage.position == live_positions[-1]
        return True


@dataclass(frozen=True)
class Rule:
    id: str
    check: str
    params: BaseModel
    action: str
    message: str
    applies_to: Selector
    line: int | None = None


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    version: int
    summary: str
    sources: tuple[dict, ...]
    applies_to: Selector
    rules: tuple[Rule, ...]
    path: str
    raw: dict = field(default_factory=dict, compare=False, hash=False)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


class _NoAliases(yaml.SafeLoader):
    """Policies are small hand-written files: anchors and aliases are refused outright."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed",
                                              event.start_mark)
        return super().compose_node(parent, index)


def dotted(loc) -> str:
    return field_path(loc) or "policy"


def read_yaml(path: Path, text: str | None = None):
    """(data, node tree) with aliases refused; a syntax error names file:line."""
    if text is None:
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise Invalid(f"{path}: larger than {MAX_POLICY_BYTES} bytes", field="file")
        text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_NoAliases)
        data = yaml.load(text, Loader=_NoAliases)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise Invalid(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                      field="file") from None
    return data, node


def parse_policy(path: Path, text: str | None = None) -> Policy:
    """Validate against the published schema, then each rule's params against its check."""
    data, node = read_yaml(path, text)
    if not isinstance(data, dict):
        raise Invalid(f"{path}:1: policy: a policy file holds a mapping", field="policy")
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            loc = list(err.absolute_path)
            lines.append(f"{path}:{line_of(node, loc) or '?'}: {dotted(loc)}: {err.message}")
        raise Invalid("\n".join(lines), field=dotted(list(errors[0].absolute_path)))
    rules, seen = [], set()
    for index, raw in enumerate(data["rules"]):
        loc = ["rules", index]
        if raw["id"] in seen:
            raise Invalid(f"{path}:{line_of(node, loc + ['id'])}: rules[{index}].id: "
                          f"duplicate rule id {raw['id']!r}", field=f"rules[{index}].id")
        seen.add(raw["id"])
        try:
            params = CHECKS[raw["check"]].params.model_validate(raw.get("params") or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = loc + ["params", *first["loc"]]
            line = line_of(node, where if raw.get("params") else loc + ["check"])
            raise Invalid(f"{path}:{line}: {dotted(where)}: {first['msg']}",
                          field=dotted(where)) from None
        rules.append(Rule(raw["id"], raw["check"], params, raw["action"], raw["message"],
                          Selector.of(raw.get("applies_to")), line_of(node, loc)))
    return Policy(data["id"], data["title"], data["version"], data["summary"],
                  tuple(data["sources"]), Selector.of(data.get("applies_to")), tuple(rules),
                  str(path), data)


def load_policy_dir(folder: Path) -> Policy:
    policy = parse_policy(folder / "policy.yaml")
    if policy.id != folder.name:
        raise Invalid(f"{folder / 'policy.yaml'}:1: id: {policy.id!r} must match its folder "
                      f"name {folder.name!r}", field="id")
    return policy


def load_policies(root: Path | None = None) -> dict[str, Policy]:
    """Every policy in the configured folder, validated; the first malformed one stops
    everything. Parsed once per folder per process."""
    if root is None:
        from app.settings import get_settings

        root = get_settings().policy_dir or POLICY_DIR
    return _load(Path(root))


@lru_cache(maxsize=8)
def _load(root: Path) -> dict[str, Policy]:
    out = {}
    for folder in sorted(p for p in root.iterdir() if (p / "policy.yaml").is_file()):
        policy = load_policy_dir(folder)
        out[policy.id] = policy
    return out


def known_policy_ids(ids: list[str]) -> list[str]:
    """Declared policies must exist; duplicates collapse, order is kept."""
    shipped = load_policies()
    for index, policy_id in enumerate(ids):
        if policy_id not in shipped:
            raise Invalid(f"no policy {policy_id!r}; known: {', '.join(sorted(shipped))}",
                          field=f"policies[{index}]")
    return list(dict.fromkeys(ids))


def policies_for(declared: list[str] | None) -> list[Policy]:
    """What a plan is judged against: the mandatory policies, then the ones it declares."""
    shipped = load_policies()
    ids = dict.fromkeys([*get_settings().mandatory_policies, *(declared or [])])
    return [shipped[i] for i in ids if i in shipped]
