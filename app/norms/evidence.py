"""Gathering a plan's facts: from the database (a few indexed queries) or from a plan file."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_
from sqlmodel import Session, select

from app.access import (
    counts_against_release,
    grants_for,
    visible_agreements,
    visible_incidents,
    visible_results,
    visible_runs,
)
from app.agreements.tables import (
    AgreementScope,
    AgreementSignature,
    DisclosureAgreement,
)
from app.auth.principal import SYSTEM, Principal
from app.checkpoints.tables import Checkpoint
from app.errors import Invalid
from app.evals.tables import ACTIVE, EvalResult, EvalRun
from app.incidents.tables import Incident, IncidentModel
from app.labs.tables import Lab
from app.models.tables import CARD_SECTIONS, AIModel
from app.norms.facts import (
    AgreementFacts,
    ExemptionFacts,
    GrantFacts,
    IncidentFacts,
    PlanFacts,
    ResultFacts,
    RunFacts,
    StageFacts,
)
from app.norms.loader import Policy, dotted, read_yaml
from app.norms.tables import PolicyExemption
from app.plans.schemas import PlanCreate
from app.plans.tables import ReleasePlan, Stage
from app.safeyaml import line_of
from app.timeutil import as_utc, utcnow

EVAL_CHECKS = ("required_evaluations", "metric_threshold", "threshold_safeguards")


def suite_versions() -> dict[str, int]:
    from app.evals.suites import SUITES  # torch-free specs

    return {k: v.version for k, v in SUITES.items()}


def _needs(policies: list[Policy]) -> tuple[set[str], set[str]]:
    """(checks used, suites named) so only the evidence a policy reads is fetched."""
    checks, suites = set(), set()
    for policy in policies:
        for rule in policy.rules:
            checks.add(rule.check)
            if rule.check == "required_evaluations":
                suites.update(rule.params.suites)
            elif rule.check in EVAL_CHECKS:
                suites.add(rule.params.suite)
    return checks, suites


def plan_facts(session: Session, plan: ReleasePlan, policies: list[Policy], *,
               principal: Principal = SYSTEM, as_of: datetime | None = None,
               stages: list[Stage] | None = None) -> PlanFacts:
    """All the evidence, whoever reads: a verdict must never be false for a reader because
    some evidence is hidden from them. What `principal` may not see is listed in
    `facts.hidden`, and the verdicts shown to them carry it as counts, never names
    (app.norms.engine.for_reader)."""
    checks, suites = _needs(policies)
    if stages is None:
        stages = list(session.exec(select(Stage).where(Stage.plan_id == plan.id)
                                   .order_by(Stage.position)))
    hosted = _hosted(session, plan, stages)
    facts = PlanFacts(
        plan_id=plan.id, model=plan.model_id, title=plan.title, policies=list(plan.policies),
        as_of=as_of or utcnow(), suite_versions=suite_versions(),
        stages=[StageFacts(
            position=s.position, name=s.name, access_level=s.access_level,
            parameter_count=s.parameter_count, checkpoint_ref=s.checkpoint_ref,
            planned_date=s.planned_date, actual_date=s.actual_date, artifacts=list(s.artifacts),
            rationale=s.rationale, risk_assessment=s.risk_assessment, status=s.status, id=s.id,
            checkpoint_id=hosted[s.id][0] if hosted[s.id] else None,
            checkpoint_ids=hosted[s.id], hosted=bool(hosted[s.id])) for s in stages])
    if suites:
        rows = session.exec(select(
            EvalResult.id, EvalResult.suite_id, EvalResult.suite_version, EvalResult.source,
            EvalResult.created_at, EvalResult.metrics, EvalResult.checkpoint_id).where(
            EvalResult.model_id == plan.model_id, EvalResult.suite_id.in_(suites)))
        facts.results = [ResultFacts(i, s, v, src, as_utc(at), m or {}, c)
                         for i, s, v, src, at, m, c in rows]
        facts.runs = [RunFacts(i, s, c) for i, s, c in session.exec(select(
            EvalRun.id, EvalRun.suite_id, EvalRun.checkpoint_id).where(
            EvalRun.model_id == plan.model_id, EvalRun.status.in_(ACTIVE),
            EvalRun.suite_id.in_(suites)))]
    if "partner_agreement" in checks:
        facts.agreements = _agreements(session, plan, facts)
    if "no_open_incidents" in checks:
        facts.incidents = _incidents(session, plan)
    if "model_card_complete" in checks:
        model = session.get(AIModel, plan.model_id)
        facts.card = {k: getattr(model, k) or "" for k in CARD_SECTIONS}
    facts.exemptions = [
        ExemptionFacts(e.id, e.position, e.policy_id, e.rule_id, e.reason,
                       as_utc(e.expires_at), e.granted_by)
        for e in session.exec(select(PolicyExemption).where(
            PolicyExemption.plan_id == plan.id, PolicyExemption.revoked_at.is_(None)))]
    if not principal.is_coordinator:
        facts.hidden = _hidden(session, principal, facts)
    return facts


def _hosted(session: Session, plan: ReleasePlan, stages: list[Stage]) -> dict[int, list[int]]:
    """Stage id -> its hosted checkpoints: the one checkpoint_ref names (same model) first,
    then those attached to the stage."""
    refs = {s.checkpoint_ref for s in stages if s.checkpoint_ref}
    by_name = dict(session.exec(select(Checkpoint.name, Checkpoint.id).where(
        Checkpoint.model_id == plan.model_id, Checkpoint.name.in_(refs))).all()) if refs else {}
    attached: dict[int, list[int]] = {}
    ids = [s.id for s in stages]
    for ckpt_id, stage_id in session.exec(select(Checkpoint.id, Checkpoint.stage_id).where(
            Checkpoint.stage_id.in_(ids)).order_by(Checkpoint.id)) if ids else ():
        attached.setdefault(stage_id, []).append(ckpt_id)
    out = {}
    for s in stages:
        named = [by_name[s.checkpoint_ref]] if s.checkpoint_ref in by_name else []
        out[s.id] = named + [c for c in attached.get(s.id, []) if c not in named]
    return out


def _hidden(session: Session, principal: Principal, facts: PlanFacts) -> dict[str, set]:
    """Ids of the evidence `principal` may not see, by kind, through app.access."""
    kinds = (("agreement", DisclosureAgreement, visible_agreements(principal),
              [a.id for a in facts.agreements]),
             ("incident", Incident, visible_incidents(principal),
              [i.id for i in facts.incidents]),
             ("result", EvalResult, visible_results(principal), [r.id for r in facts.results]),
             ("run", EvalRun, visible_runs(principal), [r.id for r in facts.runs]))
    out = {}
    for kind, table, visible, ids in kinds:
        if ids:
            seen = set(session.exec(select(table.id).where(table.id.in_(ids), visible)).all())
            if hidden := set(ids) - seen:
                out[kind] = hidden
    return out


def _agreements(session: Session, plan: ReleasePlan, facts: PlanFacts) -> list[AgreementFacts]:
    stage_ids = [s.id for s in facts.stages]
    ckpt_ids = sorted({c for s in facts.stages for c in s.checkpoint_ids})
    clauses = [AgreementScope.model_id == plan.model_id, AgreementScope.stage_id.in_(stage_ids)]
    if ckpt_ids:
        clauses.append(AgreementScope.checkpoint_id.in_(ckpt_ids))
    scopes = session.exec(select(AgreementScope).where(or_(*clauses))).all()
    # What partners could really download, and when: the download route's own rule.
    grants = grants_for(session, ckpt_ids)
    if not scopes and not grants:
        return []
    ids = {s.agreement_id for s in scopes} | {g.agreement_id for g in grants}
    signed: dict[int, list[str]] = {}
    for agreement_id, slug in session.exec(
            select(AgreementSignature.agreement_id, Lab.slug)
            .join(Lab, Lab.id == AgreementSignature.lab_id)
            .where(AgreementSignature.agreement_id.in_(ids))):
        signed.setdefault(agreement_id, []).append(slug)
    slugs = dict(session.exec(select(Lab.id, Lab.slug).where(
        Lab.id.in_({g.lab_id for g in grants}))).all()) if grants else {}
    out = []
    for a in session.exec(select(DisclosureAgreement).where(DisclosureAgreement.id.in_(ids))
                          .order_by(DisclosureAgreement.id)):
        mine = [s for s in scopes if s.agreement_id == a.id]
        out.append(AgreementFacts(
            a.id, a.title, a.kind, a.status, as_utc(a.starts_at), as_utc(a.ends_at),
            as_utc(a.activated_at), as_utc(a.terminated_at), sorted(signed.get(a.id, [])),
            stage_ids={s.stage_id for s in mine if s.stage_id},
            checkpoint_ids={s.checkpoint_id for s in mine if s.checkpoint_id}
            | {g.checkpoint_id for g in grants if g.agreement_id == a.id},
            covers_model=any(s.model_id == plan.model_id for s in mine),
            grants=[GrantFacts(slugs[g.lab_id], s.position, g.start, g.end)
                    for g in grants if g.agreement_id == a.id
                    for s in facts.stages if g.checkpoint_id in s.checkpoint_ids]))
    return out


def _incidents(session: Session, plan: ReleasePlan):
    rows = session.exec(select(Incident.id, Incident.title, Incident.severity, Incident.status,
                               counts_against_release())
                        .join(IncidentModel, IncidentModel.incident_id == Incident.id)
                        .where(IncidentModel.model_id == plan.model_id)).all()
    return [IncidentFacts(i, t, sev, st, bool(c)) for i, t, sev, st, c in rows]


def next_disclosure(session: Session, plan: ReleasePlan) -> datetime | None:
    """When evidence of this plan hidden from the public may next become public by the
    clock alone (an incident's embargo ends, an agreement's confidentiality ends), so the
    announced (public) verdicts are re-judged then."""
    now = utcnow()
    found = [
        session.exec(select(func.min(Incident.embargo_until))
                     .join(IncidentModel, IncidentModel.incident_id == Incident.id)
                     .where(IncidentModel.model_id == plan.model_id,
                            Incident.embargo_until > now)).one(),
        session.exec(select(func.min(DisclosureAgreement.confidential_until))
                     .join(AgreementScope,
                           AgreementScope.agreement_id == DisclosureAgreement.id)
                     .join(Stage, Stage.id == AgreementScope.stage_id, isouter=True)
                     .join(Checkpoint, Checkpoint.id == AgreementScope.checkpoint_id,
                           isouter=True)
                     .where(or_(AgreementScope.model_id == plan.model_id,
                                Stage.plan_id == plan.id,
                                Checkpoint.model_id == plan.model_id),
                            DisclosureAgreement.confidential_until > now)).one()]
    found = [as_utc(f) for f in found if f is not None]
    return min(found) if found else None


# -- plan files -------------------------------------------------------------------------

class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultIn(_In):
    stage: int | None = Field(default=None, description="stage position; none = the model")
    suite: str
    version: int = 1
    source: Literal["measured", "reported"] = "measured"
    measured_at: date | datetime
    metrics: dict[str, float] = Field(default_factory=dict)


class RunIn(_In):
    stage: int | None = None
    suite: str


class AgreementIn(_In):
    title: str = "agreement"
    kind: Literal["research_access", "pre_release_evaluation", "coordinated_disclosure",
                  "data_sharing"] = "research_access"
    status: Literal["draft", "proposed", "active", "terminated"] = "active"
    partners: list[str] = Field(default_factory=list, description="labs that signed")
    in_force_from: date | datetime | None = None
    ends: date | datetime
    terminated: date | datetime | None = None
    stages: list[int] = Field(default_factory=list)
    whole_model: bool = False


class IncidentIn(_In):
    id: str | int
    title: str = ""
    severity: Literal["low", "medium", "high", "critical"]
    status: Literal["submitted", "triaged", "confirmed", "resolved", "rejected", "duplicate"]
    acknowledged: bool = Field(default=False, description="the lab acknowledged it")


class EvidenceIn(_In):
    as_of: date | datetime | None = None
    released: dict[int, date] = Field(default_factory=dict)
    results: list[ResultIn] = Field(default_factory=list)
    runs: list[RunIn] = Field(default_factory=list)
    agreements: list[AgreementIn] = Field(default_factory=list)
    incidents: list[IncidentIn] = Field(default_factory=list)
    model_card: dict[str, str] = Field(default_factory=dict)


def _dt(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return datetime.combine(value, time.min, tzinfo=UTC)


def load_plan_with_evidence(path: str | Path) -> tuple[PlanCreate, PlanFacts]:
    """A plan file (the format `stagegate plan file` reads) plus an optional `evidence:`
    section, judged without a database. Errors name file:line and the field."""
    path = Path(path)
    data, node = read_yaml(path)
    if not isinstance(data, dict):
        raise Invalid(f"{path}:1: a plan file holds a mapping (model, title, stages)",
                      field="file")
    raw_evidence = data.pop("evidence", None) or {}
    data.setdefault("file", True)
    plan = _validated(PlanCreate, data, [], path, node)
    evidence = _validated(EvidenceIn, raw_evidence, ["evidence"], path, node)
    return plan, facts_from_file(plan, evidence)


def _validated(schema, data, prefix: list, path: Path, node):
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}:{line_of(node, prefix + list(e['loc'])) or '?'}: "
                 f"{dotted(prefix + list(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise Invalid("\n".join(lines),
                      field=dotted(prefix + list(exc.errors()[0]["loc"]))) from None


def facts_from_file(plan: PlanCreate, ev: EvidenceIn) -> PlanFacts:
    # In a file a stage's checkpoint is "hosted" under its position, so results can say
    # `stage: N` in place of a registry checkpoint id.
    stages = [StageFacts(
        position=i, name=s.name, access_level=s.access_level, parameter_count=s.parameter_count,
        checkpoint_ref=s.checkpoint_ref, planned_date=s.planned_date,
        actual_date=ev.released.get(i), artifacts=list(s.artifacts), rationale=s.rationale,
        risk_assessment=s.risk_assessment,
        status="released" if i in ev.released else "planned", checkpoint_id=i, checkpoint_ids=[i])
        for i, s in enumerate(plan.stages, start=1)]
    agreements = []
    for n, a in enumerate(ev.agreements, start=1):
        start = _dt(a.in_force_from)
        facts = AgreementFacts(
            f"A{n}", a.title, a.kind, a.status, start or _dt(ev.as_of) or utcnow(), _dt(a.ends),
            start if a.status in ("active", "terminated") else None, _dt(a.terminated),
            list(a.partners), stage_positions=set(a.stages), covers_model=a.whole_model)
        # A file's stages stand for hosted checkpoints at partners access: each partner
        # could download a covered stage while the agreement was in force.
        if (begin := facts.in_force_from()) is not None:
            end = min(facts.ends_at, facts.terminated_at or facts.ends_at)
            facts.grants = [GrantFacts(partner, s.position, begin, end)
                            for partner in facts.partners for s in stages
                            if a.whole_model or s.position in facts.stage_positions]
        agreements.append(facts)
    return PlanFacts(
        plan_id=None, model=plan.model, title=plan.title, policies=list(plan.policies),
        stages=stages, as_of=_dt(ev.as_of) or utcnow(), suite_versions=suite_versions(),
        results=[ResultFacts(f"R{n}", r.suite, r.version, r.source, _dt(r.measured_at),
                             dict(r.metrics), r.stage)
                 for n, r in enumerate(ev.results, start=1)],
        runs=[RunFacts(f"Q{n}", r.suite, r.stage) for n, r in enumerate(ev.runs, start=1)],
        agreements=agreements,
        incidents=[IncidentFacts(i.id, i.title, i.severity, i.status,
                                 i.status == "confirmed" or i.acknowledged)
                   for i in ev.incidents],
        card=dict(ev.model_card))
