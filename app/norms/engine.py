"""Judging a plan's facts against policies: one verdict per stage x rule, never raising."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from app.norms.checks import CHECKS, day, start_of
from app.norms.facts import PlanFacts, StageFacts
from app.norms.loader import Policy, Rule

VERDICTS = ("pass", "fail", "pending", "exempt")


@dataclass
class Verdict:
    stage: int
    stage_name: str
    policy: str
    policy_version: int
    rule: str
    check: str
    action: str
    verdict: str
    message: str  # the policy's words for the lab, shown when the rule does not pass
    detail: str   # what the check found
    evidence: list[dict] = field(default_factory=list)
    measured: Any = None
    threshold: Any = None
    fix: str | None = None
    due: date | None = None
    exemption: dict | None = None

    @property
    def blocks(self) -> bool:
        """A deny rule that does not hold stops the stage's release."""
        return self.action == "deny" and self.verdict in ("fail", "pending")

    def to_dict(self) -> dict:
        # Shallow on purpose: evidence items are plain dicts already, and a deep copy
        # (dataclasses.asdict) was a third of a compliance read.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["due"] = self.due.isoformat() if self.due else None
        return out


def applicable(policy: Policy, rule: Rule, stage: StageFacts, positions: list[int]) -> bool:
    return (policy.applies_to.matches(stage, positions)
            and rule.applies_to.matches(stage, positions))


def judge_stage(facts: PlanFacts, policies: list[Policy], stage: StageFacts) -> list[Verdict]:
    positions = [s.position for s in facts.live_stages()]
    # A released stage is judged as of its release; an open one as if released now.
    when = start_of(stage.actual_date) if stage.released and stage.actual_date else facts.as_of
    out = []
    for policy in policies:
        for rule in policy.rules:
            if not applicable(policy, rule, stage, positions):
                continue
            try:
                got = CHECKS[rule.check].run(facts, stage, rule.params, when)
            except Exception as exc:  # noqa: BLE001 - a bug in one check must not hide the rest
                from app.norms.checks import Outcome

                got = Outcome("fail", f"check {rule.check} could not run: {exc}")
            verdict = Verdict(stage.position, stage.name, policy.id, policy.version, rule.id,
                              rule.check, rule.action, got.verdict, rule.message, got.detail,
                              got.evidence, got.measured, got.threshold, got.fix, got.due)
            _apply_exemption(facts, verdict)
            if facts.hidden:
                for_reader(verdict, facts.hidden)
            out.append(verdict)
    return out


CONFIDENTIAL = {"agreement": "a confidential agreement", "incident": "an incident you may not "
                "see", "result": "a result you may not see", "run": "a run you may not see"}


def for_reader(verdict: Verdict, hidden: dict[str, set]) -> None:
    """The verdict stays what all the evidence says; what the reader may not see is
    counted ("1 confidential agreement"), never named: its id, link, partners, numbers
    and the words that name it are taken out."""
    kept, counts = [], {}
    for item in verdict.evidence:
        if item.get("id") in hidden.get(item.get("kind"), ()):
            counts[item["kind"]] = counts.get(item["kind"], 0) + 1
        else:
            kept.append(item)
    if not counts:
        return
    verdict.evidence = kept + [{"kind": kind, "id": None, "href": None, "confidential": n}
                               for kind, n in sorted(counts.items())]
    for kind in counts:
        for id_ in hidden[kind]:
            words = re.compile(rf"\b{kind} {re.escape(str(id_))}\b")
            verdict.detail = words.sub(CONFIDENTIAL[kind], verdict.detail)
            if verdict.fix:
                verdict.fix = words.sub(CONFIDENTIAL[kind], verdict.fix)
    if "result" in counts:
        # The number itself is the hidden evidence: the reader gets the verdict only.
        verdict.measured = None
        verdict.detail = f"judged on {CONFIDENTIAL['result']}"


def _apply_exemption(facts: PlanFacts, verdict: Verdict) -> None:
    if verdict.verdict == "pass":
        return
    for ex in facts.exemptions:
        if (ex.position, ex.policy, ex.rule) == (verdict.stage, verdict.policy, verdict.rule) \
                and facts.as_of < ex.expires_at:
            verdict.exemption = {"id": ex.id, "reason": ex.reason, "granted_by": ex.granted_by,
                                 "expires_at": ex.expires_at.isoformat(),
                                 "would_be": verdict.verdict}
            verdict.verdict = "exempt"
            # The clock ends an exemption: the verdict turns back then.
            verdict.due = min(filter(None, [verdict.due, day(ex.expires_at)]))
            return


def judge(facts: PlanFacts, policies: list[Policy],
          positions: list[int] | None = None) -> list[Verdict]:
    out = []
    for stage in facts.live_stages():
        if positions is None or stage.position in positions:
            out += judge_stage(facts, policies, stage)
    return out


def summary(verdicts: list[Verdict]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for v in verdicts:
        counts[v.verdict] += 1
    return counts


def overall(verdicts: list[Verdict]) -> str:
    """fail if any deny rule fails, else pending if any is pending, else pass."""
    deny = [v for v in verdicts if v.action == "deny"]
    if any(v.verdict == "fail" for v in deny):
        return "fail"
    if any(v.verdict == "pending" for v in deny):
        return "pending"
    return "pass"
