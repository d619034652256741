"""The registry of named checks a policy rule may use, each with a typed params schema.

A check is a pure function of the evidence (facts.py). It never raises on missing
evidence: it says `fail` (someone must act) or `pending` (the evidence is on its way or
a date has not come yet, so waiting is enough), with the evidence it looked at, the
measured value, the threshold and what would make it pass. Policies name checks; no
expression from a policy file is ever evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.norms.facts import (
    ACCESS_ORDER,
    OPEN_INCIDENT_STATUSES,
    SEVERITY_ORDER,
    PlanFacts,
    ResultFacts,
    StageFacts,
)

AccessLevel = Literal["internal", "partners", "researchers", "api", "public_weights"]
CardSection = Literal["model_details", "intended_use", "factors", "metrics", "evaluation_data",
                      "training_data", "quantitative_analyses", "ethical_considerations",
                      "caveats_and_recommendations"]
Artifact = Literal["weights", "code", "paper", "model_card", "detector", "output_samples",
                   "dataset"]


@dataclass
class Outcome:
    verdict: str  # pass | fail | pending
    detail: str
    evidence: list[dict] = field(default_factory=list)
    measured: Any = None
    threshold: Any = None
    fix: str | None = None
    # When a pending verdict turns by the clock alone (the gate re-checks then).
    due: date | None = None


@dataclass(frozen=True)
class Check:
    name: str
    params: type[BaseModel]
    run: Callable[[PlanFacts, StageFacts, Any, datetime], Outcome]
    description: str


CHECKS: dict[str, Check] = {}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check(name: str, params: type[Params]):
    def register(fn):
        CHECKS[name] = Check(name, params, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return register


def ref(kind: str, id_: Any, **extra) -> dict:
    """An evidence link the registry can resolve; ids from a plan file have no link."""
    paths = {"result": "/api/v1/evals/results/{}", "agreement": "/api/v1/agreements/{}",
             "incident": "/api/v1/incidents/{}", "run": "/api/v1/evals/runs/{}",
             "model": "/api/v1/models/{}", "exemption": None}
    href = paths.get(kind).format(id_) if paths.get(kind) and isinstance(id_, int) else None
    return {"kind": kind, "id": id_, "href": href, **extra}


def day(at: datetime | date) -> date:
    return at.date() if isinstance(at, datetime) else at


def start_of(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _previous(plan: PlanFacts, stage: StageFacts) -> StageFacts | None:
    earlier = [s for s in plan.live_stages() if s.position < stage.position]
    return earlier[-1] if earlier else None


# -- stage spacing ---------------------------------------------------------------------

class MinDays(Params):
    min_days: int = Field(ge=0, le=3650)


@check("min_days_between_releases", MinDays)
def min_days_between_releases(plan, stage, p: MinDays, when) -> Outcome:
    """At least `min_days` between the previous stage's release and this one's."""
    prev = _previous(plan, stage)
    if prev is None:
        return Outcome("pass", "the first stage has no earlier release to keep apart from")
    prev_date = prev.actual_date or prev.planned_date
    if prev_date is None:
        return Outcome("pending", f"stage {prev.position} ({prev.name}) has no date yet",
                       threshold=p.min_days, fix=f"release or date stage {prev.position}")
    earliest = prev_date + timedelta(days=p.min_days)
    this = stage.actual_date if stage.released else (stage.planned_date or day(when))
    gap = (this - prev_date).days
    base = dict(measured=gap, threshold=p.min_days,
                evidence=[{"kind": "stage", "id": prev.position, "href": None,
                           "date": prev_date.isoformat()}])
    if gap < p.min_days:
        verb = "was released" if stage.released else "is planned"
        return Outcome("fail", f"stage {stage.position} {verb} {gap} days after stage "
                       f"{prev.position} ({prev_date}); the policy asks for {p.min_days}",
                       fix=f"release on or after {earliest}", **base)
    if not stage.released and (not prev.released or day(when) < earliest):
        why = (f"stage {prev.position} is not released yet" if not prev.released
               else f"the {p.min_days} days run until {earliest}")
        return Outcome("pending", why, fix=f"wait until {earliest}",
                       due=earliest if prev.released else None, **base)
    return Outcome("pass", f"{gap} days after stage {prev.position} (at least {p.min_days})",
                   **base)


# -- evaluations ----------------------------------------------------------------------

class Evaluations(Params):
    suites: list[str] = Field(min_length=1, max_length=20)
    source: Literal["measured", "reported", "any"] = "measured"
    max_age_days: int | None = Field(default=None, ge=1, le=3650)
    current_version: bool = True
    # checkpoint: on the stage's own hosted checkpoint; model: anywhere on the model.
    scope: Literal["checkpoint", "model"] = "checkpoint"
    mode: Literal["all", "any"] = "all"


def _candidates(plan: PlanFacts, stage: StageFacts, suite: str, source: str,
                scope: str) -> list[ResultFacts]:
    rows = [r for r in plan.results if r.suite == suite
            and (source == "any" or r.source == source)]
    if scope == "checkpoint":
        rows = [r for r in rows if stage.checkpoint_id is not None
                and r.checkpoint_id == stage.checkpoint_id]
    return sorted(rows, key=lambda r: r.measured_at, reverse=True)


def _find_result(plan, stage, suite, p, when) -> tuple[ResultFacts | None, str]:
    """The newest acceptable result, else None and why none is."""
    rows = _candidates(plan, stage, suite, p.source, p.scope)
    if not rows:
        if p.scope == "checkpoint" and stage.checkpoint_id is None:
            return None, (f"stage {stage.position}'s checkpoint "
                          f"{stage.checkpoint_ref or '(none named)'} is not hosted here")
        return None, f"no {'' if p.source == 'any' else p.source + ' '}{suite} result"
    current = plan.suite_versions.get(suite)
    why = ""
    for r in rows:
        if p.current_version and current is not None and r.version != current:
            why = f"{suite} result {r.id} is on version {r.version}, the suite is at {current}"
            continue
        age = (day(when) - day(r.measured_at)).days
        if p.max_age_days is not None and age > p.max_age_days:
            why = why or f"{suite} result {r.id} is {age} days old (at most {p.max_age_days})"
            continue
        return r, ""
    return None, why


def _run_pending(plan: PlanFacts, stage: StageFacts, suite: str, scope: str):
    return next((r for r in plan.runs if r.suite == suite and
                 (scope == "model" or r.checkpoint_id == stage.checkpoint_id)), None)


@check("required_evaluations", Evaluations)
def required_evaluations(plan, stage, p: Evaluations, when) -> Outcome:
    """Named evaluation suites have results on the stage's checkpoint, fresh and current."""
    found, missing, waiting, evidence = [], [], [], []
    for suite in p.suites:
        r, why = _find_result(plan, stage, suite, p, when)
        if r is not None:
            found.append(suite)
            evidence.append(ref("result", r.id, suite=f"{r.suite}@{r.version}",
                                source=r.source))
            continue
        run = None if stage.released else _run_pending(plan, stage, suite, p.scope)
        if run is not None:
            waiting.append(suite)
            evidence.append(ref("run", run.id, suite=suite))
        else:
            missing.append(why)
    ok = bool(found) if p.mode == "any" else not (missing or waiting)
    base = dict(evidence=evidence, measured=found, threshold=p.suites)
    if ok:
        return Outcome("pass", f"results present: {', '.join(found)}", **base)
    if p.mode == "any" and waiting or p.mode == "all" and waiting and not missing:
        return Outcome("pending", f"waiting for {', '.join(waiting)} to finish", **base,
                       fix="nothing: the queued evaluations will settle it")
    return Outcome("fail", "; ".join(missing), **base,
                   fix=f"have the registry measure {', '.join(p.suites)} on the "
                       f"checkpoint" if p.source == "measured" else
                       f"add results for {', '.join(p.suites)}")


class Threshold(Params):
    suite: str
    metric: str
    op: Literal[">=", "<="] = ">="
    value: float
    source: Literal["measured", "reported", "any"] = "measured"
    scope: Literal["checkpoint", "model"] = "checkpoint"
    max_age_days: int | None = Field(default=None, ge=1, le=3650)
    current_version: bool = True


def _metric(plan, stage, p, when) -> tuple[ResultFacts | None, Any, Outcome | None]:
    """The metric value, or the outcome to return when there is none."""
    r, why = _find_result(plan, stage, p.suite, p, when)
    if r is None:
        run = None if stage.released else _run_pending(plan, stage, p.suite, p.scope)
        if run is not None:
            return None, None, Outcome("pending", f"waiting for {p.suite} to finish",
                                       evidence=[ref("run", run.id, suite=p.suite)],
                                       threshold=f"{p.metric} {p.op} {p.value}")
        return None, None, Outcome("fail", why, threshold=f"{p.metric} {p.op} {p.value}",
                                   fix=f"have the registry measure {p.suite}")
    value = r.metrics.get(p.metric)
    if not isinstance(value, (int, float)) or math.isnan(value):  # NaN never passes
        return r, None, Outcome("fail", f"result {r.id} has no number for {p.metric}",
                                evidence=[ref("result", r.id)], fix=f"re-run {p.suite}")
    return r, float(value), None


def _holds(value: float, op: str, limit: float) -> bool:
    return value >= limit if op == ">=" else value <= limit


@check("metric_threshold", Threshold)
def metric_threshold(plan, stage, p: Threshold, when) -> Outcome:
    """A measured metric is on the right side of a threshold."""
    r, value, early = _metric(plan, stage, p, when)
    if early:
        return early
    base = dict(evidence=[ref("result", r.id, suite=f"{r.suite}@{r.version}")],
                measured=value, threshold=f"{p.op} {p.value}")
    if _holds(value, p.op, p.value):
        return Outcome("pass", f"{p.metric} = {value:.4g} ({p.op} {p.value})", **base)
    return Outcome("fail", f"{p.metric} = {value:.4g}, the policy needs {p.op} {p.value}",
                   fix=f"bring {p.metric} to {p.op} {p.value} or keep the stage at narrower "
                       "access", **base)


class Safeguards(Params):
    suite: str
    metric: str
    # The capability threshold: crossing it means op holds (e.g. bits_per_byte <= 2.0).
    op: Literal[">=", "<="] = ">="
    value: float
    safeguards: list[Artifact] = Field(min_length=1)
    wider_access: list[AccessLevel] = Field(default_factory=lambda: ["api", "public_weights"])
    source: Literal["measured", "reported", "any"] = "measured"
    scope: Literal["checkpoint", "model"] = "checkpoint"
    max_age_days: int | None = None
    current_version: bool = True


@check("threshold_safeguards", Safeguards)
def threshold_safeguards(plan, stage, p: Safeguards, when) -> Outcome:
    """An evaluation crossing a threshold requires named safeguards before wider access."""
    if stage.access_level not in p.wider_access:
        return Outcome("pass", f"{stage.access_level} access is not wider access")
    r, value, early = _metric(plan, stage, p, when)
    if early:
        return early
    base = dict(evidence=[ref("result", r.id, suite=f"{r.suite}@{r.version}")],
                measured=value, threshold=f"{p.op} {p.value}")
    if not _holds(value, p.op, p.value):
        return Outcome("pass", f"{p.metric} = {value:.4g} has not crossed {p.op} {p.value}",
                       **base)
    lacking = [s for s in p.safeguards if s not in stage.artifacts]
    if not lacking:
        return Outcome("pass", f"{p.metric} = {value:.4g} crossed the threshold and the "
                       f"stage ships {', '.join(p.safeguards)}", **base)
    return Outcome("fail", f"{p.metric} = {value:.4g} crossed {p.op} {p.value}; the stage "
                   f"lacks {', '.join(lacking)}",
                   fix=f"ship {', '.join(lacking)} with the stage or keep it below "
                       f"{p.wider_access[0]} access", **base)


# -- agreements -----------------------------------------------------------------------

class PartnerAgreement(Params):
    min_partners: int = Field(default=1, ge=1, le=100)
    min_days: int = Field(default=0, ge=0, le=3650)
    kinds: list[Literal["research_access", "pre_release_evaluation", "coordinated_disclosure",
                        "data_sharing"]] | None = None
    # What a stage with nothing hosted here gets: nobody can tell whether partners could
    # download it, so never a pass; `pending` where uploading later is expected.
    unhosted: Literal["fail", "pending"] = "fail"


def _covers(a, stage: StageFacts) -> bool:
    return (a.covers_model or (stage.id is not None and stage.id in a.stage_ids)
            or stage.position in a.stage_positions
            or any(c in a.checkpoint_ids for c in stage.checkpoint_ids)
            or (stage.checkpoint_id is not None and stage.checkpoint_id in a.checkpoint_ids))


def _partner_days(a, stage: StageFacts, at: datetime, n: int) -> tuple[int, datetime] | None:
    """Days the n-th longest-standing partner could download the stage's checkpoints by
    `at`, and since when; None when fewer than n partners could at `at`."""
    since = sorted(a.partners_with_access(stage.position, at).values())
    if len(since) < n:
        return None
    start = since[n - 1]
    return (day(at) - day(start)).days, start


@check("partner_agreement", PartnerAgreement)
def partner_agreement(plan, stage, p: PartnerAgreement, when) -> Outcome:
    """N partner labs could download the stage's checkpoints under an agreement, N days before release."""
    at = start_of(stage.actual_date) if stage.released else when
    rows = [a for a in plan.agreements if _covers(a, stage)
            and (p.kinds is None or a.kind in p.kinds)]
    threshold = f"{p.min_partners} partners, {p.min_days} days before release"
    refs = [ref("agreement", a.id) for a in rows]
    if not stage.hosted:
        return Outcome(p.unhosted, f"no checkpoint of stage {stage.position} ({stage.name}) "
                       "is hosted here, so the registry cannot tell whether partners could "
                       "download it", threshold=threshold, evidence=refs,
                       fix=f"upload the stage's checkpoint and attach it to stage "
                           f"{stage.position}")
    if not rows:
        return Outcome("fail", f"no agreement covers stage {stage.position} ({stage.name})",
                       threshold=threshold, fix=f"propose an agreement covering stage "
                       f"{stage.position} to at least {p.min_partners} partner labs")
    best, why = None, ""
    for a in rows:
        found = _partner_days(a, stage, at, p.min_partners)
        if found is None:
            n = len(a.partners_with_access(stage.position, at))
            why = why or (f"agreement {a.id} lets {n} partner(s) download stage "
                          f"{stage.position}'s checkpoints on {day(at)}; "
                          f"{p.min_partners} are needed")
            continue
        if best is None or found[0] > best[1]:
            best = (a, found[0], found[1])
    if best is None:
        return Outcome("fail", why, threshold=threshold, evidence=refs,
                       fix=f"have at least {p.min_partners} partner labs sign an agreement "
                           f"in force that covers stage {stage.position} (attach its "
                           "checkpoint to the stage, at partners access) before the release")
    a, days, since = best
    partners = sorted(a.partners_with_access(stage.position, at))
    base = dict(evidence=[ref("agreement", a.id, partners=partners)], measured=days,
                threshold=threshold)
    if days >= p.min_days:
        return Outcome("pass", f"agreement {a.id}: {len(partners)} partners could download "
                       f"stage {stage.position}'s checkpoints for {days} days", **base)
    ready = day(since) + timedelta(days=p.min_days)
    if not stage.released and stage.planned_date and stage.planned_date < ready:
        return Outcome("fail", f"stage {stage.position} is planned for {stage.planned_date}, "
                       f"before partners under agreement {a.id} have had access "
                       f"{p.min_days} days ({ready})", fix=f"move the stage to {ready} or later",
                       **base)
    if not stage.released and _partner_days(a, stage, start_of(ready), p.min_partners):
        return Outcome("pending", f"partners under agreement {a.id} have had access {days} "
                       f"days; {p.min_days} are needed", due=ready,
                       fix=f"release on or after {ready}", **base)
    return Outcome("fail", f"partners under agreement {a.id} had access {days} days before "
                   f"release; {p.min_days} are needed", fix="give partners more time before "
                   "release", **base)


# -- incidents, cards, stage text -------------------------------------------------------

class Incidents(Params):
    min_severity: Literal["low", "medium", "high", "critical"] = "high"


@check("no_open_incidents", Incidents)
def no_open_incidents(plan, stage, p: Incidents, when) -> Outcome:
    """No confirmed or acknowledged unresolved incident on the model at or above a severity."""
    floor = SEVERITY_ORDER[p.min_severity]
    open_ = [i for i in plan.incidents if i.status in OPEN_INCIDENT_STATUSES
             and SEVERITY_ORDER.get(i.severity, 0) >= floor]
    rows = [i for i in open_ if i.counts]
    # Anyone can file a claim: until a coordinator confirms it or the lab acknowledges it,
    # it is shown but decides nothing.
    review = [ref("incident", i.id, severity=i.severity, under_review=True)
              for i in open_ if not i.counts]
    note = f"; {len(review)} under review (not counted)" if review else ""
    if not rows:
        return Outcome("pass", f"no confirmed or acknowledged unresolved incident at "
                       f"{p.min_severity} or above{note}", evidence=review, measured=0,
                       threshold=0)
    shown = [ref("incident", i.id, severity=i.severity) for i in rows]
    return Outcome("fail", f"{len(rows)} unresolved incident(s) at {p.min_severity} or "
                   f"above{note}", evidence=shown + review, measured=len(rows), threshold=0,
                   fix="resolve or reject the incidents before releasing")


class Card(Params):
    sections: list[CardSection] = Field(min_length=1)
    min_chars: int = Field(default=20, ge=1, le=10_000)


@check("model_card_complete", Card)
def model_card_complete(plan, stage, p: Card, when) -> Outcome:
    """The model card has the named sections written."""
    short = [s for s in p.sections if len((plan.card.get(s) or "").strip()) < p.min_chars]
    evidence = [ref("model", plan.model)]
    if short:
        return Outcome("fail", f"model card sections missing or under {p.min_chars} "
                       f"characters: {', '.join(short)}", evidence=evidence,
                       measured=len(p.sections) - len(short), threshold=len(p.sections),
                       fix=f"write {', '.join(short)} in the model card")
    return Outcome("pass", f"model card has {', '.join(p.sections)}", evidence=evidence,
                   measured=len(p.sections), threshold=len(p.sections))


class RiskAssessment(Params):
    min_chars: int = Field(default=40, ge=1, le=100_000)
    rationale: bool = True


@check("risk_assessment_present", RiskAssessment)
def risk_assessment_present(plan, stage, p: RiskAssessment, when) -> Outcome:
    """The stage carries a written risk assessment (and a rationale)."""
    length = len(stage.risk_assessment.strip())
    lacking = []
    if length < p.min_chars:
        lacking.append(f"a risk assessment of at least {p.min_chars} characters (has {length})")
    if p.rationale and not stage.rationale.strip():
        lacking.append("a rationale")
    if lacking:
        return Outcome("fail", f"stage {stage.position} lacks " + " and ".join(lacking),
                       measured=length, threshold=p.min_chars,
                       fix=f"revise the plan: write stage {stage.position}'s "
                           "risk_assessment and rationale")
    return Outcome("pass", "risk assessment and rationale written", measured=length,
                   threshold=p.min_chars)


class Artifacts(Params):
    artifacts: list[Artifact] = Field(min_length=1)


@check("artifacts_include", Artifacts)
def artifacts_include(plan, stage, p: Artifacts, when) -> Outcome:
    """The stage ships the named artifacts (e.g. a model card, a detector)."""
    lacking = [a for a in p.artifacts if a not in stage.artifacts]
    if lacking:
        return Outcome("fail", f"stage {stage.position} does not ship {', '.join(lacking)}",
                       measured=stage.artifacts, threshold=p.artifacts,
                       fix=f"add {', '.join(lacking)} to the stage's artifacts")
    return Outcome("pass", f"ships {', '.join(p.artifacts)}", measured=stage.artifacts,
                   threshold=p.artifacts)


class Staged(Params):
    min_prior_stages: int = Field(default=1, ge=1, le=50)
    # Earlier stages count only if they were at most this open.
    max_prior_access: AccessLevel = "public_weights"


@check("staged_access", Staged)
def staged_access(plan, stage, p: Staged, when) -> Outcome:
    """Wider access only after earlier, narrower or smaller stages went out first."""
    ceiling = ACCESS_ORDER[p.max_prior_access]
    prior = [s for s in plan.live_stages() if s.position < stage.position
             and ACCESS_ORDER.get(s.access_level, 4) <= ceiling]
    done = [s for s in prior if s.released]
    base = dict(measured=len(done), threshold=p.min_prior_stages)
    if len(done) >= p.min_prior_stages:
        return Outcome("pass", f"{len(done)} earlier stage(s) released first", **base)
    if len(prior) >= p.min_prior_stages and not stage.released:
        return Outcome("pending", f"{len(done)} of {p.min_prior_stages} earlier stage(s) "
                       "released so far", fix="release the earlier stages first", **base)
    return Outcome("fail", f"stage {stage.position} has {len(prior)} earlier stage(s) at "
                   f"{p.max_prior_access} access or narrower; the policy asks for "
                   f"{p.min_prior_stages}", fix="add a narrower earlier stage to the plan",
                   **base)
