"""`stagegate policy check|list|simulate|refresh`."""

from __future__ import annotations

import sys

import click


def _line(v) -> str:
    mark = {"pass": "PASS", "fail": "FAIL", "pending": "PEND", "exempt": "EXMT"}[v.verdict]
    text = f"  {mark} {v.action:<5} stage {v.stage} ({v.stage_name}) {v.policy}/{v.rule}: " \
           f"{v.detail}"
    if v.verdict in ("fail", "pending"):
        text += f"\n        {' '.join(v.message.split())}"
        if v.fix:
            text += f"\n        to pass: {v.fix}"
    return text


@click.group()
def policy() -> None:
    """Publication-norm policies: check plan files, list, dry-run against the registry."""


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
    """The shipped policies and their rules."""
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
    """Verdicts every filed plan would get if the policy at PATH were adopted; no writes."""
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
    click.echo(f"{pol.id}: {out.plans} plans judged, {out.would_fail} would fail, "
               f"{out.would_pend} pending")


@policy.command("refresh")
def refresh() -> None:
    """Record verdicts that the clock has turned (the worker does this periodically)."""
    from app.db import session_scope
    from app.norms.service import refresh_due

    with session_scope() as session:
        changes = refresh_due(session)
    click.echo(f"{changes} verdict change(s) recorded")
