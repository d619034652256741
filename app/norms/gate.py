"""The stage gate and policy-id checks the plans service calls (kept apart to stay light)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from app.errors import PolicyViolation
from app.norms.engine import judge_stage
from app.norms.evidence import plan_facts
from app.norms.loader import known_policy_ids, policies_for  # noqa: F401 (their old home)


def gate_release(session: Session, plan, stage, release_date: date) -> list[dict]:
    """Raise PolicyViolation (409) when a deny rule does not hold for releasing `stage`
    on `release_date`; the caller has changed nothing yet. Otherwise return the verdicts
    judged (policy, rule, action, verdict: no evidence, which may name what the public may
    not see), which the release records as an event and so as a transparency-log leaf."""
    policies = policies_for(plan.policies)
    if not policies:
        return []
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
    return [{"policy": v.policy, "rule": v.rule, "action": v.action, "verdict": v.verdict}
            for v in verdicts]
