"""`stagegate policy check|list|simulate|refresh` and `stagegate policy exemption ...`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from app.clikit import as_json_option, emit, remote


def _line(v) -> str:
    mark = {"pass": "PASS", "fail": "FAIL", "pending": "PEND", "exempt": "EXMT"}[v.verdict]
    text = f"  {mark} {v.action:<5} stage {v.stage} ({v.stage_name}) {v.policy}/{v.rule}: " \
           f"{v.detail}"
    if v.verdict in ("fail", "pending"):
        text += f"\n        {' '.join(v.message.split())}"
        if v.fix:
            text += f"\n        to pass: {' '.join(v.fix.split())}"
        if v.due:
            text += f"\n        due: {v.due.isoformat()}"
    return text


@click.group()
def policy() -> None:
    """Publication-norm policies: check a plan file and list the policies (no database),
    dry-run and refresh (operator, local database), exemptions (over HTTP)."""


@policy.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_ids", multiple=True,
              help="judge against this policy (repeatable); default: the ones the plan declares")
def check(path: str, policy_ids: tuple[str, ...]) -> None:
    """Judge a plan file (with its inline `evidence:`) before filing it; no database.

    Exit status: 0 when no deny rule fails, 1 on any deny, 2 on a malformed file."""
    from app.norms.engine import judge, overall
    from app.norms.evidence import load_plan_with_evidence
    from app.norms.gate import known_policy_ids, policies_for

    plan, facts = load_plan_with_evidence(path)
    ids = known_policy_ids(list(policy_ids) or plan.policies)
    policies = policies_for(ids)
    if not policies:
        click.echo(f"{path}: the plan declares no policy; name one with --policy", err=True)
        sys.exit(2)
    verdicts = judge(facts, policies)
    click.echo(f"{path}: {plan.title} against {', '.join(p.id for p in policies)} "
               f"as of {facts.as_of.date()}")
    for v in verdicts:
        click.echo(_line(v))
    denied = [v for v in verdicts if v.action == "deny" and v.verdict == "fail"]
    click.echo(f"verdict: {overall(verdicts)} ({len(denied)} deny rule(s) failing)")
    sys.exit(1 if denied else 0)


@policy.command("list")
def list_() -> None:
    """The policies installed here (the shipped folder, or STAGEGATE_POLICY_DIR) and their
    rules; no database."""
    from app.norms.service import list_policies

    for p in list_policies():
        flag = " (mandatory)" if p.mandatory else ""
        click.echo(f"{p.id} v{p.version}{flag}: {p.title}")
        for r in p.rules:
            click.echo(f"  {r.action:<5} {r.id} ({r.check})")


@policy.command("simulate")
@click.argument("path", type=click.Path(exists=True))
@click.option("--limit", type=int, default=None, help="judge at most this many plans")
def simulate(path: str, limit: int | None) -> None:
    """Verdicts every filed plan would get if the policy at PATH were adopted; no writes
    (operator, local database)."""
    from app.auth.principal import SYSTEM
    from app.db import session_scope
    from app.norms.service import resolve_policy, simulate_policy

    pol = resolve_policy(path=path)
    with session_scope(write=False) as session:
        out = simulate_policy(session, SYSTEM, pol, limit=limit)
    for r in out.results:
        click.echo(f"plan {r.plan_id} {r.verdict:<7} {r.title}")
        for v in r.failing:
            click.echo(f"    {v.verdict} {v.action} stage {v.stage} {v.rule}: {v.detail}")
            click.echo(f"        {' '.join(v.message.split())}")
            if v.fix:
                click.echo(f"        to pass: {' '.join(v.fix.split())}")
            if v.due:
                click.echo(f"        due: {v.due.isoformat()}")
    click.echo(f"{pol.id}: {out.plans} plans judged, {out.would_fail} would fail, "
               f"{out.would_pend} pending")


@policy.command("refresh")
def refresh() -> None:
    """Record verdicts that the clock has turned (the worker does this periodically)
    (operator, local database)."""
    from app.db import session_scope
    from app.norms.service import refresh_due

    with session_scope() as session:
        changes = refresh_due(session)
    click.echo(f"{changes} verdict change(s) recorded")


# -- exemptions, over HTTP -----------------------------------------------------------

EXEMPTION_COLUMNS = ["id", "stage", "policy", "rule", "expires_at", "granted_by",
                     "revoked_at", "reason"]


def _expiry(value: datetime) -> str:
    """The API wants an aware time: a date or time typed here is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _row(e: dict) -> dict:
    return {"id": e["id"], "stage": e["position"], "policy": e["policy_id"],
            "rule": e["rule_id"], "expires_at": e["expires_at"],
            "granted_by": e["granted_by"], "revoked_at": e["revoked_at"],
            "reason": e["reason"]}


@policy.group("exemption")
def exemption() -> None:
    """Waivers of one rule on one stage of a plan, with a reason, until a date (over HTTP;
    coordinators grant and revoke, anyone who may see the plan lists them)."""


@exemption.command("grant")
@click.argument("plan_id", type=int)
@click.option("--stage", "position", type=click.IntRange(1), required=True,
              help="the stage's position (API field position)")
@click.option("--policy", "policy_id", required=True, help="policy id, e.g. gpt2-2019")
@click.option("--rule", required=True, help="rule id within the policy")
@click.option("--reason", required=True, help="why (10 characters or more; shown with the verdict)")
@click.option("--expires-at", required=True,
              type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="until this date or time (UTC unless it carries an offset)")
@as_json_option
@remote
def exemption_grant(client, plan_id: int, position: int, policy_id: str, rule: str,
                    reason: str, expires_at: datetime, as_json: bool) -> None:
    """Exempt stage --stage of plan PLAN_ID from one rule (coordinators)."""
    body = {"position": position, "policy": policy_id, "rule": rule, "reason": reason,
            "expires_at": _expiry(expires_at)}
    made = client.post(f"/api/v1/plans/{plan_id}/exemptions", body)
    if as_json:
        return emit(made, True)
    click.echo(f"exemption {made['id']} on plan {made['plan_id']} stage {made['position']}: "
               f"{made['policy_id']}/{made['rule_id']} waived until {made['expires_at']}")


@exemption.command("list")
@click.argument("plan_id", type=int)
@as_json_option
@remote
def exemption_list(client, plan_id: int, as_json: bool) -> None:
    """The exemptions of plan PLAN_ID, revoked ones included."""
    rows = client.get(f"/api/v1/plans/{plan_id}/exemptions")
    emit(rows if as_json else [_row(e) for e in rows], as_json, EXEMPTION_COLUMNS)


@exemption.command("revoke")
@click.argument("plan_id", type=int)
@click.argument("exemption_id", type=int)
@as_json_option
@remote
def exemption_revoke(client, plan_id: int, exemption_id: int, as_json: bool) -> None:
    """End exemption EXEMPTION_ID of plan PLAN_ID now (coordinators); the rule counts
    again from the next verdict."""
    row = client.post(f"/api/v1/plans/{plan_id}/exemptions/{exemption_id}/revoke")
    if as_json:
        return emit(row, True)
    click.echo(f"exemption {row['id']} on plan {row['plan_id']} stage {row['position']} "
               f"({row['policy_id']}/{row['rule_id']}) revoked at {row['revoked_at']}")
