"""Every check in the registry, with evidence that passes it and evidence that fails it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.norms.checks import CHECKS, start_of
from app.norms.facts import (
    AgreementFacts,
    GrantFacts,
    IncidentFacts,
    PlanFacts,
    ResultFacts,
    RunFacts,
    StageFacts,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MAY_1, JAN_1, DEC_31 = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                        datetime(2026, 12, 31, tzinfo=UTC))


def at(y, m, d) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def facts(*stages: StageFacts, **extra) -> PlanFacts:
    return PlanFacts(plan_id=1, model=1, title="t", policies=[], stages=list(stages), as_of=NOW,
                     suite_versions={"perplexity": 1, "detectability": 1,
                                     "bias_association": 1}, **extra)


def stage(position=1, **kw) -> StageFacts:
    kw.setdefault("name", f"s{position}")
    kw.setdefault("access_level", "public_weights")
    kw.setdefault("checkpoint_id", 100 + position)
    return StageFacts(position=position, **kw)


def run(name: str, plan: PlanFacts, target: StageFacts, **params):
    chk = CHECKS[name]
    when = start_of(target.actual_date) if target.released else plan.as_of
    return chk.run(plan, target, chk.params.model_validate(params), when)


# -- min_days_between_releases ---------------------------------------------------------

def test_spacing_passes_fails_and_waits_for_the_clock():
    first = stage(1, status="released", actual_date=date(2026, 1, 1))
    ok = stage(2, status="released", actual_date=date(2026, 3, 15))
    out = run("min_days_between_releases", facts(first, ok), ok, min_days=60)
    assert out.verdict == "pass" and out.measured == 73 and out.threshold == 60
    rushed = stage(2, status="released", actual_date=date(2026, 1, 20))
    out = run("min_days_between_releases", facts(first, rushed), rushed, min_days=60)
    assert out.verdict == "fail" and "19 days" in out.detail and "2026-03-02" in out.fix
    planned_too_soon = stage(2, planned_date=date(2026, 2, 1))
    out = run("min_days_between_releases", facts(first, planned_too_soon), planned_too_soon,
              min_days=60)
    assert out.verdict == "fail"
    # Planned far enough out, but today is still inside the 60 days: waiting is enough.
    recent = stage(1, status="released", actual_date=date(2026, 5, 1))
    later = stage(2, planned_date=date(2026, 9, 1))
    out = run("min_days_between_releases", facts(recent, later), later, min_days=60)
    assert out.verdict == "pending" and out.due == date(2026, 6, 30)


# -- required_evaluations --------------------------------------------------------------

def result(suite, *, ckpt=101, version=1, source="measured", when=MAY_1, **metrics):
    return ResultFacts(id=len(suite), suite=suite, version=version, source=source,
                       measured_at=when, metrics=metrics, checkpoint_id=ckpt)


def test_required_evaluations_pass_pending_fail_and_stale():
    s = stage(1)
    suites = ["perplexity", "detectability"]
    good = facts(s, results=[result("perplexity"), result("detectability")])
    out = run("required_evaluations", good, s, suites=suites, max_age_days=90)
    assert out.verdict == "pass" and {e["kind"] for e in out.evidence} == {"result"}
    assert out.evidence[0]["href"].startswith("/api/v1/evals/results/")
    waiting = facts(s, results=[result("perplexity")], runs=[RunFacts(7, "detectability", 101)])
    out = run("required_evaluations", waiting, s, suites=suites)
    assert out.verdict == "pending" and "detectability" in out.detail
    missing = facts(s, results=[result("perplexity")])
    out = run("required_evaluations", missing, s, suites=suites)
    assert out.verdict == "fail" and "no measured detectability result" in out.detail
    stale = facts(s, results=[result("perplexity", when=at(2025, 1, 1)), result("detectability")])
    out = run("required_evaluations", stale, s, suites=suites, max_age_days=90)
    assert out.verdict == "fail" and "days old" in out.detail
    old_version = facts(s, results=[result("perplexity", version=0), result("detectability")])
    out = run("required_evaluations", old_version, s, suites=suites)
    assert out.verdict == "fail" and "version 0" in out.detail
    reported = facts(s, results=[result("perplexity", source="reported"),
                                 result("detectability")])
    assert run("required_evaluations", reported, s, suites=suites).verdict == "fail"
    other_ckpt = facts(s, results=[result("perplexity", ckpt=999), result("detectability")])
    assert run("required_evaluations", other_ckpt, s, suites=suites).verdict == "fail"


# -- metric_threshold / threshold_safeguards -------------------------------------------

def test_metric_threshold_both_sides_and_missing_metric():
    s = stage(1)
    params = dict(suite="detectability", metric="tfidf_auroc_topk40", op=">=", value=0.8)
    high = facts(s, results=[result("detectability", tfidf_auroc_topk40=0.93)])
    out = run("metric_threshold", high, s, **params)
    assert out.verdict == "pass" and out.measured == 0.93
    low = facts(s, results=[result("detectability", tfidf_auroc_topk40=0.61)])
    out = run("metric_threshold", low, s, **params)
    assert out.verdict == "fail" and out.measured == 0.61 and out.threshold == ">= 0.8"
    none = facts(s, results=[result("detectability", other=1.0)])
    assert run("metric_threshold", none, s, **params).verdict == "fail"
    nan = facts(s, results=[result("detectability", tfidf_auroc_topk40=float("nan"))])
    assert run("metric_threshold", nan, s, **params).verdict == "fail"


def test_threshold_safeguards_required_only_once_crossed():
    params = dict(suite="perplexity", metric="bits_per_byte", op="<=", value=1.0,
                  safeguards=["detector", "model_card"])
    capable = [result("perplexity", bits_per_byte=0.8)]
    bare = stage(1, artifacts=["weights"])
    out = run("threshold_safeguards", facts(bare, results=capable), bare, **params)
    assert out.verdict == "fail" and "detector" in out.detail
    guarded = stage(1, artifacts=["weights", "detector", "model_card"])
    assert run("threshold_safeguards", facts(guarded, results=capable), guarded,
               **params).verdict == "pass"
    weak = [result("perplexity", bits_per_byte=2.3)]
    assert run("threshold_safeguards", facts(bare, results=weak), bare, **params).verdict == "pass"
    narrow = stage(1, access_level="partners", artifacts=["weights"])
    assert run("threshold_safeguards", facts(narrow, results=capable), narrow,
               **params).verdict == "pass"


# -- partner_agreement -----------------------------------------------------------------

def agreement(partners=("a", "b"), start=JAN_1, end=DEC_31, **kw):
    kw.setdefault("stage_positions", {1})
    # What the registry's grant function gives: each partner can download the covered
    # stages' checkpoints while the agreement is in force.
    kw.setdefault("grants", [GrantFacts(p, pos, start, end) for p in partners
                             for pos in kw["stage_positions"]])
    return AgreementFacts(id=5, title="access", kind="research_access", status="active",
                          starts_at=start, ends_at=end, activated_at=start, terminated_at=None,
                          partners=list(partners), **kw)


def test_partner_agreement_partners_days_and_force():
    s = stage(1)
    out = run("partner_agreement", facts(s, agreements=[agreement()]), s, min_partners=2,
              min_days=60)
    assert out.verdict == "pass" and out.measured == 151
    assert out.evidence[0]["href"] == "/api/v1/agreements/5"
    out = run("partner_agreement", facts(s, agreements=[agreement(partners=["a"])]), s,
              min_partners=2)
    assert out.verdict == "fail" and "lets 1 partner(s) download stage 1" in out.detail
    assert run("partner_agreement", facts(s), s).verdict == "fail"
    expired = agreement(end=at(2026, 3, 1))
    assert run("partner_agreement", facts(s, agreements=[expired]), s).verdict == "fail"
    young = agreement(start=at(2026, 5, 20))
    out = run("partner_agreement", facts(s, agreements=[young]), s, min_days=60)
    assert out.verdict == "pending" and out.due == date(2026, 7, 19)
    other_stage = agreement(stage_positions={2})
    assert run("partner_agreement", facts(s, agreements=[other_stage]), s).verdict == "fail"
    # Signed and in force, but the grant opens nothing (the checkpoint is internal, or
    # the scope misses it): no partner could download, so it does not count.
    empty = agreement(grants=[])
    out = run("partner_agreement", facts(s, agreements=[empty]), s)
    assert out.verdict == "fail" and "lets 0 partner(s)" in out.detail
    # Nothing of the stage hosted here: never a pass, whatever the agreement says.
    unhosted = stage(1, hosted=False)
    out = run("partner_agreement", facts(unhosted, agreements=[agreement()]), unhosted)
    assert out.verdict == "fail" and "no checkpoint of stage 1" in out.detail
    out = run("partner_agreement", facts(unhosted, agreements=[agreement()]), unhosted,
              unhosted="pending")
    assert out.verdict == "pending"
    # A released stage is judged on its release day, not today.
    done = stage(1, status="released", actual_date=date(2026, 1, 20))
    out = run("partner_agreement", facts(done, agreements=[agreement()]), done, min_days=60)
    assert out.verdict == "fail" and out.measured == 19


# -- incidents, card, risk assessment, artifacts, staging ------------------------------

def test_no_open_incidents_by_severity_and_status():
    s = stage(1)
    rows = [IncidentFacts(1, "spam", "medium", "triaged"),
            IncidentFacts(2, "fraud", "critical", "resolved"),
            IncidentFacts(3, "voice clone", "high", "submitted")]
    out = run("no_open_incidents", facts(s, incidents=rows), s, min_severity="high")
    assert out.verdict == "fail" and out.measured == 1
    assert [e["id"] for e in out.evidence] == [3]
    out = run("no_open_incidents", facts(s, incidents=rows), s, min_severity="critical")
    assert out.verdict == "pass"
    out = run("no_open_incidents", facts(s, incidents=rows), s, min_severity="medium")
    assert out.verdict == "fail" and [e["id"] for e in out.evidence] == [1, 3]


def test_an_unreviewed_claim_is_shown_but_does_not_decide():
    s = stage(1)
    claim = IncidentFacts(7, "anonymous claim", "critical", "submitted", counts=False)
    out = run("no_open_incidents", facts(s, incidents=[claim]), s)
    assert out.verdict == "pass" and out.measured == 0
    assert out.evidence[0]["id"] == 7 and out.evidence[0]["under_review"] is True
    assert "1 under review (not counted)" in out.detail
    acknowledged = IncidentFacts(7, "anonymous claim", "critical", "submitted", counts=True)
    assert run("no_open_incidents", facts(s, incidents=[acknowledged]), s).verdict == "fail"


def test_model_card_sections():
    s = stage(1)
    card = {"intended_use": "Research on language models and their risks.",
            "caveats_and_recommendations": "short"}
    out = run("model_card_complete", facts(s, card=card), s,
              sections=["intended_use", "caveats_and_recommendations"])
    assert out.verdict == "fail" and "caveats_and_recommendations" in out.detail
    out = run("model_card_complete", facts(s, card=card), s, sections=["intended_use"])
    assert out.verdict == "pass"


def test_risk_assessment_and_rationale():
    written = stage(1, risk_assessment="Spam and impersonation at scale; mitigated by a "
                                       "detector and monitoring.", rationale="Research.")
    assert run("risk_assessment_present", facts(written), written).verdict == "pass"
    blank = stage(1, rationale="Research.")
    out = run("risk_assessment_present", facts(blank), blank)
    assert out.verdict == "fail" and "risk assessment" in out.detail
    no_why = stage(1, risk_assessment=written.risk_assessment)
    assert "rationale" in run("risk_assessment_present", facts(no_why), no_why).detail


def test_artifacts_include():
    s = stage(1, artifacts=["weights", "model_card"])
    assert run("artifacts_include", facts(s), s, artifacts=["model_card"]).verdict == "pass"
    out = run("artifacts_include", facts(s), s, artifacts=["model_card", "detector"])
    assert out.verdict == "fail" and "detector" in out.detail


def test_staged_access():
    first = stage(1, access_level="researchers", status="released", actual_date=date(2026, 1, 1))
    open_ = stage(2)
    assert run("staged_access", facts(first, open_), open_).verdict == "pass"
    unreleased = stage(1, access_level="researchers")
    assert run("staged_access", facts(unreleased, open_), open_).verdict == "pending"
    alone = stage(1)
    assert run("staged_access", facts(alone), alone).verdict == "fail"
    assert run("staged_access", facts(first, open_), open_,
               max_prior_access="partners").verdict == "fail"


def test_every_registered_check_is_covered_here_and_in_the_schema():
    import json

    from app.norms.loader import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    assert set(schema["$defs"]["rule"]["properties"]["check"]["enum"]) == set(CHECKS)
    source = Path(__file__).read_text()
    assert all(f'"{name}"' in source for name in CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_params_are_typed(name):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CHECKS[name].params.model_validate({"no_such_param": 1})
