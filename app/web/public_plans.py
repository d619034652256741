"""Public pages for release plans (timeline, revisions, side-by-side diff), agreements and
policies."""

from __future__ import annotations

from litestar.response import Template

from app.agreements.service import get_agreement, read_agreement
from app.auth.principal import Principal
from app.db import session_scope
from app.errors import Invalid, NotFound
from app.http import PUBLIC, get
from app.plans import service as plans
from app.web.pages import page


@get("/plans/{plan_id:int}", opt=PUBLIC, name="plan")
def plan_page(principal: Principal, plan_id: int, a: int | None = None,
              b: int | None = None) -> Template:
    with session_scope(write=False) as session:
        plan = plans.read_plan(session, plans.get_plan(session, principal, plan_id))
        revisions = plans.list_revisions(session, principal, plan_id)
        numbers = [r.number for r in revisions]
        diff = None
        if len(numbers) >= 2:
            b = b if b is not None else numbers[-1]
            a = a if a is not None else numbers[numbers.index(b) - 1] if b in numbers[1:] \
                else numbers[0]
            for field, value in (("a", a), ("b", b)):
                if value not in numbers:
                    raise Invalid(f"plan {plan_id} has no revision {value}", field=field)
            diff = {"a": a, "b": b,
                    "changes": plans.diff_revisions(session, principal, plan_id, a, b)}
        return page("plan.html", plan=plan, revisions=revisions, diff=diff)


@get("/agreements/{agreement_id:int}", opt=PUBLIC, name="agreement")
def agreement_page(principal: Principal, agreement_id: int) -> Template:
    with session_scope(write=False) as session:
        agreement = read_agreement(session, principal,
                                   get_agreement(session, principal, agreement_id))
        return page("agreement.html", agreement=agreement)


def loaded_policies() -> list | None:
    """Policies from app.norms when that part is installed; None when it is not."""
    try:
        from app import norms
    except ImportError:
        return None
    for name in ("load_policies", "list_policies", "all_policies", "policies"):
        found = getattr(norms, name, None)
        if callable(found):
            items = found()
            return list(items.values() if isinstance(items, dict) else items)
    return None


def _field(obj, name: str, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


@get("/policies", opt=PUBLIC, name="policies")
def policies_page() -> Template:
    return page("policies.html", policies=loaded_policies(), field=_field)


@get("/policies/{policy_id:str}", opt=PUBLIC, name="policy")
def policy_page(policy_id: str) -> Template:
    for policy in loaded_policies() or []:
        if str(_field(policy, "id")) == policy_id:
            return page("policy.html", policy=policy, field=_field)
    raise NotFound(f"no policy {policy_id!r}", field="policy_id")


def plan_handlers() -> list:
    return [plan_page, agreement_page, policies_page, policy_page]
