"""Compliance for the registry: policies, verdicts per plan, exemptions, history, dry runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from app.access import plan_audience, visible_plans
from app.auth.principal import ANONYMOUS, SYSTEM, Principal
from app.errors import Invalid, NotFound
from app.events.service import record
from app.events.tables import Event
from app.norms.engine import Verdict, judge, overall, summary
from app.norms.evidence import next_disclosure, plan_facts
from app.norms.gate import policies_for
from app.norms.loader import Policy, load_policies, parse_policy
from app.norms.schemas import (
    ComplianceRead,
    ExemptionCreate,
    PlanSimulation,
    PolicyRead,
    RuleRead,
    SimulationRead,
    StageCompliance,
    VerdictRead,
)
from app.norms.tables import ComplianceVerdict, PolicyExemption
from app.plans.service import get_plan
from app.plans.tables import ReleasePlan, Stage
from app.settings import get_settings
from app.timeutil import utcnow

# -- policies ---------------------------------------------------------------------------


def read_policy(policy: Policy) -> PolicyRead:
    folder = Path(policy.path).parent / "examples"
    examples = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    raw = policy.raw
    return PolicyRead(
        id=policy.id, title=policy.title, version=policy.version, summary=policy.summary,
        sources=list(policy.sources), applies_to=raw.get("applies_to") or {},
        rules=[RuleRead(id=r.id, check=r.check, params=r.params.model_dump(mode="json"),
                        action=r.action, message=r.message,
                        applies_to=raw["rules"][i].get("applies_to") or {})
               for i, r in enumerate(policy.rules)],
        examples=examples, mandatory=policy.id in get_settings().mandatory_policies)


def list_policies() -> list[PolicyRead]:
    return [read_policy(p) for p in load_policies().values()]


def get_policy(policy_id: str) -> PolicyRead:
    policy = load_policies().get(policy_id)
    if policy is None:
        raise NotFound(f"no policy {policy_id!r}", field="policy_id")
    return read_policy(policy)


# -- compliance -------------------------------------------------------------------------

def compliance_of(plan_id: int | None, verdicts: list[Verdict], stages: list, policies,
                  as_of: datetime) -> ComplianceRead:
    by_stage: dict[int, list[Verdict]] = {}
    for v in verdicts:
        by_stage.setdefault(v.stage, []).append(v)
    out = []
    for s in stages:
        if s.status == "cancelled":
            continue
        mine = by_stage.get(s.position, [])
        out.append(StageCompliance(position=s.position, name=s.name, status=s.status,
                                   verdict=overall(mine),
                                   rules=[VerdictRead(**v.to_dict()) for v in mine]))
    return ComplianceRead(plan_id=plan_id, as_of=as_of, policies=[p.id for p in policies],
                          verdict=overall(verdicts), counts=summary(verdicts), stages=out)


def plan_verdicts(session: Session, plan: ReleasePlan, principal: Principal = SYSTEM,
                  policies: list[Policy] | None = None, as_of: datetime | None = None,
                  stages: list | None = None):
    policies = policies_for(plan.policies) if policies is None else policies
    facts = plan_facts(session, plan, policies, principal=principal, as_of=as_of,
                       stages=stages)
    return facts, policies, judge(facts, policies)


def plan_compliance(session: Session, principal: Principal, plan_id: int,
                    as_of: datetime | None = None) -> ComplianceRead:
    """Every stage x rule of the plan: pass, fail, pending or exempt, with evidence.

    Computed from the evidence on each read (a handful of indexed queries), so it is exact
    at the moment of reading, the clock included."""
    plan = get_plan(session, principal, plan_id)
    return compliance_of_plan(session, principal, plan, as_of=as_of)


def compliance_of_plan(session: Session, principal: Principal, plan: ReleasePlan,
                       stages: list | None = None,
                       as_of: datetime | None = None) -> ComplianceRead:
    """plan_compliance of a plan the caller already read through get_plan (a page that
    shows the plan too does not check its visibility again), with its stages if loaded."""
    facts, policies, verdicts = plan_verdicts(session, plan, principal, as_of=as_of,
                                              stages=stages)
    return compliance_of(plan.id, verdicts, facts.stages, policies, facts.as_of)


def compliance_history(session: Session, principal: Principal, plan_id: int) -> list[dict]:
    """Every verdict change of the plan, oldest first (from the event log)."""
    return history_of_plan(session, get_plan(session, principal, plan_id))


def history_of_plan(session: Session, plan: ReleasePlan) -> list[dict]:
    """compliance_history of a plan already read through get_plan."""
    rows = session.exec(select(Event).where(Event.entity_type == "plan",
                                            Event.entity_id == str(plan.id),
                                            Event.action.in_(("verdict_changed",
                                                              "exemption_granted",
                                                              "exemption_revoked")))
                        .order_by(Event.id))
    return [{"id": e.id, "at": e.at, "action": e.action, "actor": e.actor, **e.data}
            for e in rows]


# -- recording verdict changes ----------------------------------------------------------

def sync_verdicts(session: Session, plan_ids, actor: Principal = SYSTEM) -> int:
    """Recompute the plans' announced verdicts and record each change as an event.
    Returns changes.

    Announced verdicts are the public record and the same verdicts every reader gets:
    judged on all the evidence (a confidential agreement or an embargoed incident is
    counted, never named; see app.norms.engine.for_reader). The events carry the verdict
    and the rule only. `due` also carries the day hidden evidence is next disclosed by the
    clock, so the sweep looks again then."""
    changes = 0
    for plan in session.exec(select(ReleasePlan).where(ReleasePlan.id.in_(list(plan_ids)))):
        policies = policies_for(plan.policies)
        stored = {(r.position, r.policy_id, r.rule_id): r for r in session.exec(
            select(ComplianceVerdict).where(ComplianceVerdict.plan_id == plan.id))}
        if not policies and not stored:
            continue
        _, _, verdicts = plan_verdicts(session, plan, ANONYMOUS, policies)
        disclosed = next_disclosure(session, plan)
        now = utcnow()
        for v in verdicts:
            key = (v.stage, v.policy, v.rule)
            row = stored.pop(key, None)
            due = min((d for d in (v.due, disclosed and disclosed.date()) if d), default=None)
            if row is not None and row.verdict == v.verdict:
                if row.due != due:
                    row.due = due
                    session.add(row)
                continue
            before = row.verdict if row else None
            row = row or ComplianceVerdict(plan_id=plan.id, position=v.stage, policy_id=v.policy,
                                           rule_id=v.rule, verdict=v.verdict)
            row.verdict, row.due, row.updated_at = v.verdict, due, now
            session.add(row)
            state = {"plan": plan.id, "stage": v.stage, "policy": v.policy, "rule": v.rule,
                     "verdict": v.verdict}
            record(session, actor, "plan", plan.id, "verdict_changed", state,
                   lab_id=plan.lab_id,
                   visibility=plan_audience(session, plan),
                   data={"stage": v.stage, "policy": v.policy, "rule": v.rule,
                         "action_if_failing": v.action, "from": before, "to": v.verdict})
            changes += 1
        for row in stored.values():  # the rule no longer applies (plan or policy changed)
            session.delete(row)
    session.flush()
    return changes


def refresh_due(session: Session) -> int:
    """The clock's part: recompute plans with a verdict that a date passed may have turned
    (days elapsed, an agreement aged enough, an exemption expired). Run periodically."""
    today = utcnow().date()
    ids = session.exec(select(ComplianceVerdict.plan_id).where(
        ComplianceVerdict.due.is_not(None), ComplianceVerdict.due <= today).distinct()).all()
    return sync_verdicts(session, ids) if ids else 0


# -- exemptions -------------------------------------------------------------------------

def grant_exemption(session: Session, actor: Principal, plan_id: int,
                    data: ExemptionCreate) -> PolicyExemption:
    """A coordinator waives one rule on one stage, with a reason, until a date."""
    actor.require_coordinator()
    plan = get_plan(session, actor, plan_id)
    stage = session.exec(select(Stage).where(Stage.plan_id == plan.id,
                                             Stage.position == data.position)).first()
    if stage is None:
        raise NotFound(f"plan {plan_id} has no stage {data.position}", field="position")
    policies = {p.id: p for p in policies_for(plan.policies)}
    if data.policy not in policies:
        raise Invalid(f"plan {plan_id} does not follow policy {data.policy!r}", field="policy")
    if policies[data.policy].rule(data.rule) is None:
        raise Invalid(f"policy {data.policy!r} has no rule {data.rule!r}", field="rule")
    expires = data.expires_at if data.expires_at.tzinfo else None
    if expires is None:
        raise Invalid("expires_at needs a time zone (e.g. 2027-01-01T00:00:00Z)",
                      field="expires_at")
    if expires <= utcnow():
        raise Invalid("expires_at must be in the future", field="expires_at")
    row = PolicyExemption(plan_id=plan.id, position=data.position, policy_id=data.policy,
                          rule_id=data.rule, reason=data.reason, expires_at=expires,
                          granted_by_id=actor.user_id, granted_by=actor.name)
    session.add(row)
    session.flush()
    state = {"exemption": row.id, "stage": row.position, "policy": row.policy_id,
             "rule": row.rule_id, "expires_at": expires.isoformat()}
    record(session, actor, "plan", plan.id, "exemption_granted", state, lab_id=plan.lab_id,
           visibility=plan_audience(session, plan),
           data={**state, "reason": row.reason})
    return row


def revoke_exemption(session: Session, actor: Principal, plan_id: int,
                     exemption_id: int) -> PolicyExemption:
    actor.require_coordinator()
    plan = get_plan(session, actor, plan_id)
    row = session.exec(select(PolicyExemption).where(PolicyExemption.id == exemption_id,
                                                     PolicyExemption.plan_id == plan.id)).first()
    if row is None:
        raise NotFound(f"plan {plan_id} has no exemption {exemption_id}", field="exemption_id")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        state = {"exemption": row.id, "stage": row.position, "policy": row.policy_id,
                 "rule": row.rule_id}
        record(session, actor, "plan", plan.id, "exemption_revoked", state,
               lab_id=plan.lab_id, visibility=plan_audience(session, plan),
               data=state)
    return row


def list_exemptions(session: Session, principal: Principal, plan_id: int):
    return exemptions_of_plan(session, get_plan(session, principal, plan_id))


def exemptions_of_plan(session: Session, plan: ReleasePlan):
    """list_exemptions of a plan already read through get_plan."""
    return list(session.exec(select(PolicyExemption).where(PolicyExemption.plan_id == plan.id)
                             .order_by(PolicyExemption.id)))


# -- dry run ----------------------------------------------------------------------------

def resolve_policy(policy_id: str | None = None, text: str | None = None,
                   path: str | Path | None = None) -> Policy:
    if path is not None:
        path = Path(path)
        return parse_policy(path / "policy.yaml" if path.is_dir() else path)
    if text is not None:
        # Named after the API field, never a server path: errors read `policy_yaml:3: ...`.
        return parse_policy(Path("policy_yaml"), text)
    if policy_id is not None:
        policy = load_policies().get(policy_id)
        if policy is None:
            raise NotFound(f"no policy {policy_id!r}", field="policy")
        return policy
    raise Invalid("send `policy` (an id) or `policy_yaml`", field="policy")


def simulate_policy(session: Session, principal: Principal, policy: Policy,
                    limit: int | None = None) -> SimulationRead:
    """What every filed plan's verdicts would be under `policy`, changing nothing.
    Completed plans count too: would their history have complied?"""
    query = select(ReleasePlan).where(ReleasePlan.status.in_(("filed", "active", "completed")),
                                      visible_plans(principal)).order_by(ReleasePlan.id)
    if limit:
        query = query.limit(limit)
    results = []
    for plan in session.exec(query):
        _, _, verdicts = plan_verdicts(session, plan, principal, [policy])
        failing = [VerdictRead(**v.to_dict()) for v in verdicts
                   if v.verdict in ("fail", "pending")]
        results.append(PlanSimulation(plan_id=plan.id, title=plan.title,
                                      verdict=overall(verdicts), counts=summary(verdicts),
                                      failing=failing))
    return SimulationRead(policy=policy.id, plans=len(results),
                          would_fail=sum(r.verdict == "fail" for r in results),
                          would_pend=sum(r.verdict == "pending" for r in results),
                          results=results)
