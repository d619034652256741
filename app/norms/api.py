"""/api/v1/policies and /api/v1/plans/{id}/compliance: policies, verdicts, exemptions."""

from __future__ import annotations

from litestar import Controller

from app.auth.principal import Principal
from app.db import session_scope
from app.http import PUBLIC, get, post
from app.ids import Id
from app.norms import service
from app.norms.schemas import (
    ComplianceRead,
    ExemptionCreate,
    ExemptionRead,
    PolicyRead,
    SimulateIn,
    SimulationRead,
)
from app.transparency.service import leaf_indexes


class PolicyController(Controller):
    path = "/api/v1/policies"
    tags = ["policies"]  # noqa: RUF012

    @get("/", opt=PUBLIC)
    def list_policies(self) -> list[PolicyRead]:
        return service.list_policies()

    @get("/{policy_id:str}", opt=PUBLIC)
    def get_policy(self, policy_id: str) -> PolicyRead:
        return service.get_policy(policy_id)

    @post("/simulate", status_code=200)
    def simulate(self, data: SimulateIn, principal: Principal) -> SimulationRead:
        """Coordinators: every filed plan's verdicts if the policy were adopted; no writes."""
        principal.require_coordinator()
        policy = service.resolve_policy(data.policy, data.policy_yaml)
        with session_scope(write=False) as session:
            return service.simulate_policy(session, principal, policy)


# The events that record a verdict: a change of one, and the judgement at each release.
VERDICT_ACTIONS = ("verdict_changed", "release_judged")


class ComplianceController(Controller):
    path = "/api/v1/plans/{plan_id:int}"
    tags = ["policies"]  # noqa: RUF012

    @get("/compliance", opt=PUBLIC)
    def compliance(self, plan_id: Id, principal: Principal) -> ComplianceRead:
        with session_scope(write=False) as session:
            read = service.plan_compliance(session, principal, plan_id)
            read.log_index = leaf_indexes(session, principal, "plan", [plan_id],
                                          VERDICT_ACTIONS, entity_readable=True
                                          ).get(str(plan_id))
            return read

    @get("/compliance/history", opt=PUBLIC)
    def history(self, plan_id: Id, principal: Principal) -> list[dict]:
        with session_scope(write=False) as session:
            return service.compliance_history(session, principal, plan_id)

    @get("/exemptions", opt=PUBLIC)
    def list_exemptions(self, plan_id: Id, principal: Principal) -> list[ExemptionRead]:
        with session_scope(write=False) as session:
            return [ExemptionRead.model_validate(e)
                    for e in service.list_exemptions(session, principal, plan_id)]

    @post("/exemptions")
    def grant_exemption(self, plan_id: Id, data: ExemptionCreate,
                        principal: Principal) -> ExemptionRead:
        with session_scope() as session:
            return ExemptionRead.model_validate(
                service.grant_exemption(session, principal, plan_id, data))

    @post("/exemptions/{exemption_id:int}/revoke", status_code=200)
    def revoke_exemption(self, plan_id: Id, exemption_id: Id,
                         principal: Principal) -> ExemptionRead:
        with session_scope() as session:
            return ExemptionRead.model_validate(
                service.revoke_exemption(session, principal, plan_id, exemption_id))
