"""Public pages for release plans (timeline, revisions, side-by-side diff, compliance),
agreements and policies (rules in plain words), all through the domain services."""

from __future__ import annotations

from pathlib import Path

from litestar import Response
from litestar.response import Template

from app.agreements.service import get_agreement, read_agreement
from app.auth.principal import Principal
from app.db import session_scope
from app.errors import Invalid, NotFound
from app.http import PUBLIC, SECURITY_HEADERS, get
from app.models.tables import AIModel
from app.norms import service as norms
from app.norms.loader import load_policies
from app.plans import service as plans
from app.web.pages import page


@get("/plans/{plan_id:int}", opt=PUBLIC, name="plan")
def plan_page(principal: Principal, plan_id: int, a: int | None = None,
              b: int | None = None) -> Template:
    with session_scope(write=False) as session:
        # Visibility is checked once, here; what follows reads this plan's rows.
        row = plans.get_plan(session, principal, plan_id)
        # Held for the whole render: the plan's content and its card-complete check both
        # session.get the model, which finds it in the (weak) identity map only while
        # something holds it.
        model = session.get(AIModel, row.model_id)  # noqa: F841
        stages = plans.stages_of(session, row.id)
        plan = plans.read_plan(session, row, stages)
        revisions = plans.revisions_of_plan(session, row)
        by_number = {r.number: r for r in revisions}
        numbers = list(by_number)
        diff = None
        if len(numbers) >= 2:
            b = b if b is not None else numbers[-1]
            a = a if a is not None else numbers[numbers.index(b) - 1] if b in numbers[1:] \
                else numbers[0]
            for field, value in (("a", a), ("b", b)):
                if value not in numbers:
                    raise Invalid(f"plan {plan_id} has no revision {value}", field=field)
            diff = {"a": a, "b": b,
                    "changes": plans.diff(by_number[a].content, by_number[b].content)}
        return page("plan.html", plan=plan, revisions=revisions, diff=diff,
                    compliance=norms.compliance_of_plan(session, principal, row, stages),
                    exemptions=norms.exemptions_of_plan(session, row),
                    history=norms.history_of_plan(session, row))


@get("/agreements/{agreement_id:int}", opt=PUBLIC, name="agreement")
def agreement_page(principal: Principal, agreement_id: int) -> Template:
    with session_scope(write=False) as session:
        agreement = read_agreement(session, principal,
                                   get_agreement(session, principal, agreement_id))
        return page("agreement.html", agreement=agreement)


@get("/policies", opt=PUBLIC, name="policies")
def policies_page() -> Template:
    return page("policies.html", policies=norms.list_policies())


@get("/policies/{policy_id:str}", opt=PUBLIC, name="policy")
def policy_page(policy_id: str) -> Template:
    return page("policy.html", policy=norms.get_policy(policy_id))


@get("/policies/{policy_id:str}/examples/{name:str}", opt=PUBLIC, name="policy_example")
def policy_example(policy_id: str, name: str) -> Response:
    """An example plan file, as text: only names the policy lists (no paths from the URL)."""
    policy = norms.get_policy(policy_id)
    if name not in policy.examples:
        raise NotFound(f"policy {policy_id!r} has no example {name!r}", field="name")
    path = Path(load_policies()[policy_id].path).parent / "examples" / name
    return Response(path.read_text(encoding="utf-8"), media_type="text/plain; charset=utf-8",
                    headers=SECURITY_HEADERS)


def plan_handlers() -> list:
    return [plan_page, agreement_page, policies_page, policy_page, policy_example]
