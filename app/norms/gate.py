"""The stage gate and policy-id checks the plans service calls (kept apart to stay light)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

import app.norms.recompute  # noqa: F401 - installs the recompute listener
from app.errors import Invalid, PolicyViolation
from app.norms.engine import judge_stage
from app.norms.evidence import plan_facts
from app.norms.loader import Policy, load_policies
from app.settings import get_settings


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


def gate_release(session: Session, plan, stage, release_date: date) -> None:
    """Raise PolicyViolation (409) when a deny rule does not hold for releasing `stage`
    on `release_date`; the caller has changed nothing yet."""
    policies = policies_for(plan.policies)
    if not policies:
        return
    facts = plan_facts(session, plan, policies)
    target = facts.stage(stage.position)
    target.status, target.actual_date = "released", release_date
    verdicts = judge_stage(facts, policies, target)
    blocking = [v for v in verdicts if v.blocks]
    if blocking:
        names = ", ".join(f"{v.policy}/{v.rule}" for v in blocking)
        raise PolicyViolation(
            f"stage {stage.position} cannot be released: {names} "
            f"{'does' if len(blocking) == 1 else 'do'} not hold", field="to",
            violations=[v.to_dict() for v in blocking])
