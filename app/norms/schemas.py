"""Policy, verdict, compliance, exemption and simulation shapes (input apart from output)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RuleRead(BaseModel):
    id: str
    check: str
    params: dict
    action: str
    message: str
    applies_to: dict = {}


class PolicyRead(BaseModel):
    id: str
    title: str
    version: int
    summary: str
    sources: list[dict]
    applies_to: dict = {}
    rules: list[RuleRead]
    examples: list[str] = []
    mandatory: bool = False


class VerdictRead(BaseModel):
    stage: int
    stage_name: str
    policy: str
    policy_version: int
    rule: str
    check: str
    action: str
    verdict: str
    message: str
    detail: str
    evidence: list[dict]
    measured: Any = None
    threshold: Any = None
    fix: str | None = None
    due: date | None = None
    exemption: dict | None = None


class StageCompliance(BaseModel):
    position: int
    name: str
    status: str
    verdict: str  # fail | pending | pass: of its deny rules; warn/audit never decide
    rules: list[VerdictRead]


class ComplianceRead(BaseModel):
    plan_id: int | None
    as_of: datetime
    policies: list[str]
    verdict: str
    counts: dict[str, int]
    stages: list[StageCompliance]
    # The leaf of the latest verdict recorded for this plan (a verdict change or a
    # release's judgement) that the reader may open.
    log_index: int | None = None


class ExemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=1, le=1000, description="the stage")
    policy: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=10, max_length=5000)
    expires_at: datetime = Field(description="in the future (else 422)")


class ExemptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    plan_id: int
    position: int
    policy_id: str
    rule_id: str
    reason: str
    expires_at: datetime
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None


class SimulateIn(BaseModel):
    # One of the two is needed (else 422).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["policy"], "properties": {"policy": {"type": "string"}}},
        {"required": ["policy_yaml"], "properties": {"policy_yaml": {"type": "string"}}}]})
    policy: str | None = Field(default=None, max_length=64, description="a shipped policy id")
    policy_yaml: str | None = Field(default=None, max_length=256 * 1024,
                                    description="or a draft policy.yaml")


class PlanSimulation(BaseModel):
    plan_id: int
    title: str
    verdict: str
    counts: dict[str, int]
    failing: list[VerdictRead]


class SimulationRead(BaseModel):
    policy: str
    plans: int
    would_fail: int
    would_pend: int
    results: list[PlanSimulation]
