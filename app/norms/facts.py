"""The evidence a policy is judged on, as plain data: built from the database or a plan file.

Checks are pure functions of these facts, so the registry, the CLI (no database) and the
dry run all judge the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

ACCESS_ORDER = {"internal": 0, "partners": 1, "researchers": 2, "api": 3, "public_weights": 4}
SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
# Incident statuses that still need work; rejected, duplicate and resolved ones do not.
OPEN_INCIDENT_STATUSES = ("submitted", "triaged", "confirmed")


@dataclass
class StageFacts:
    position: int
    name: str
    access_level: str
    parameter_count: int | None = None
    checkpoint_ref: str | None = None
    planned_date: date | None = None
    actual_date: date | None = None
    artifacts: list[str] = field(default_factory=list)
    rationale: str = ""
    risk_assessment: str = ""
    status: str = "planned"
    id: int | None = None
    # The stage's own hosted checkpoint: the one checkpoint_ref names (same model), else
    # the first attached to the stage. Evaluation checks read it.
    checkpoint_id: int | None = None
    # Every hosted checkpoint of the stage (attached, or named by checkpoint_ref). False
    # `hosted`: nothing of the stage is in the registry, so partner access is unknown.
    checkpoint_ids: list[int] = field(default_factory=list)
    hosted: bool = True

    @property
    def released(self) -> bool:
        return self.status == "released"


@dataclass
class ResultFacts:
    id: int | None
    suite: str
    version: int
    source: str  # measured | reported
    measured_at: datetime
    metrics: dict
    checkpoint_id: int | None = None


@dataclass
class RunFacts:
    """An evaluation queued or running: the evidence it will produce is on its way."""
    id: int | None
    suite: str
    checkpoint_id: int | None


@dataclass
class GrantFacts:
    """Partner lab `partner` could download a checkpoint of stage `position` for
    start <= t < end, by the registry's grant function (app.access.grants_for)."""
    partner: str
    position: int
    start: datetime
    end: datetime | None


@dataclass
class AgreementFacts:
    id: int | None
    title: str
    kind: str
    status: str  # stored status: draft, proposed, active, terminated
    starts_at: datetime
    ends_at: datetime
    activated_at: datetime | None
    terminated_at: datetime | None
    partners: list[str]  # labs that signed
    stage_ids: set[int] = field(default_factory=set)
    stage_positions: set[int] = field(default_factory=set)  # plan files name positions
    checkpoint_ids: set[int] = field(default_factory=set)
    covers_model: bool = False
    grants: list[GrantFacts] = field(default_factory=list)

    def partners_with_access(self, position: int, at: datetime) -> dict[str, datetime]:
        """Partner -> since when it could download the stage's checkpoints without a
        break, for the partners who could at `at`."""
        out: dict[str, datetime] = {}
        for g in self.grants:
            if g.position == position and g.start <= at and (g.end is None or at < g.end):
                out[g.partner] = min(out.get(g.partner, g.start), g.start)
        return out

    def in_force_from(self) -> datetime | None:
        if self.activated_at is None:
            return None
        return max(self.activated_at, self.starts_at)


@dataclass
class IncidentFacts:
    id: int | None
    title: str
    severity: str
    status: str
    # Confirmed by a coordinator, or acknowledged by an affected lab: only these decide.
    # An unreviewed claim is shown as under review (app.access.counts_against_release).
    counts: bool = True


@dataclass
class ExemptionFacts:
    id: int | None
    position: int
    policy: str
    rule: str
    reason: str
    expires_at: datetime
    granted_by: str


@dataclass
class PlanFacts:
    plan_id: int | None
    model: str
    title: str
    policies: list[str]
    stages: list[StageFacts]
    as_of: datetime
    results: list[ResultFacts] = field(default_factory=list)
    runs: list[RunFacts] = field(default_factory=list)
    agreements: list[AgreementFacts] = field(default_factory=list)
    incidents: list[IncidentFacts] = field(default_factory=list)
    card: dict[str, str] = field(default_factory=dict)
    exemptions: list[ExemptionFacts] = field(default_factory=list)
    # Current suite versions of the registry's own suites.
    suite_versions: dict[str, int] = field(default_factory=dict)
    # Evidence the reader may not see, by kind ("agreement", "incident", "result", "run"):
    # the verdict is judged on everything, then these are shown as counts, never named.
    hidden: dict[str, set] = field(default_factory=dict)

    def stage(self, position: int) -> StageFacts | None:
        return next((s for s in self.stages if s.position == position), None)

    def live_stages(self) -> list[StageFacts]:
        return [s for s in self.stages if s.status != "cancelled"]
