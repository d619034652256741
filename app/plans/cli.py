"""`stagegate plan ...`: file, list, show, transition and diff release plans over HTTP."""

from __future__ import annotations

import click

from app.clikit import as_json_option, emit, limit_option, remote

PLAN_COLUMNS = ["id", "model", "status", "version", "title"]
STAGE_COLUMNS = ["position", "name", "access_level", "planned_date", "actual_date", "status"]


@click.group()
def plan() -> None:
    """Release plans (over HTTP)."""


@plan.command("file")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--draft", is_flag=True,
              help="keep it as a draft, even if the file says `file: true`")
@as_json_option
@remote
def plan_file(client, path: str, draft: bool, as_json: bool) -> None:
    """File a plan written as YAML or JSON; it is checked here first, so errors name
    the line and field, then sent to the registry."""
    from app.plans.planfile import load_plan_file

    data = load_plan_file(path, file=not draft)
    created = client.post("/api/v1/plans/", data.model_dump(mode="json", exclude_unset=False))
    if as_json:
        emit(created, True)
    else:
        click.echo(f"plan {created['id']} {created['status']}: {created['title']}")


@plan.command("list")
@click.option("--model", help="LAB/MODEL or a model id")
@click.option("--lab", help="lab slug")
@click.option("--status", help="draft, filed, withdrawn, ...")
@limit_option
@as_json_option
@remote
def plan_list(client, model, lab, status, limit, as_json) -> None:
    """Plans you may see, newest first."""
    rows = list(client.items("/api/v1/plans/", limit, model=model, lab=lab, status=status))
    emit(rows, as_json, PLAN_COLUMNS)


@plan.command("show")
@click.argument("plan_id", type=int)
@as_json_option
@remote
def plan_show(client, plan_id: int, as_json: bool) -> None:
    """One plan with its stages."""
    body = client.get(f"/api/v1/plans/{plan_id}")
    if as_json:
        return emit(body, True)
    emit(body, False, ["id", "model", "lab", "title", "status", "version", "filed_at"])
    click.echo("")
    emit(body["stages"], False, STAGE_COLUMNS)


@plan.command("transition")
@click.argument("plan_id", type=int)
@click.argument("to")
@click.option("--stage", "position", type=int, help="move this stage (its position) instead")
@click.option("--actual-date",
              help="release date of a stage (YYYY-MM-DD); default today (UTC). Never a future "
                   "date; a past one only for a coordinator importing history")
@click.option("--reason", help="why, recorded in the event log")
@click.option("--version", type=int,
              help="refuse if the plan is no longer at this version (default: the current one)")
@as_json_option
@remote
def plan_transition(client, plan_id, to, position, actual_date, reason, version,
                    as_json) -> None:
    """Move plan PLAN_ID (or one of its stages) to state TO, e.g. `filed` or `released`."""
    if version is None:
        # The API asks which version the change was meant for; a command typed now
        # means the plan as it is now.
        version = client.get(f"/api/v1/plans/{plan_id}")["version"]
    body = {k: v for k, v in {"to": to, "reason": reason, "version": version,
                              "actual_date": actual_date}.items() if v is not None}
    path = f"/api/v1/plans/{plan_id}/transitions" if position is None else \
        f"/api/v1/plans/{plan_id}/stages/{position}/transitions"
    result = client.post(path, body)
    if as_json:
        return emit(result, True)
    if position is None:
        click.echo(f"plan {result['id']} {result['status']} (version {result['version']})")
        return
    # A stage move answers with the whole plan: say what became of the stage.
    moved = next((s for s in result.get("stages", []) if s.get("position") == position), {})
    when = f" on {moved['actual_date']}" if to == "released" and moved.get("actual_date") \
        else ""
    click.echo(f"plan {result['id']} stage {position} ({moved.get('name', '?')}) "
               f"{moved.get('status', to)}{when} (plan version {result['version']})")


@plan.command("diff")
@click.argument("plan_id", type=int)
@click.option("--from", "a", type=int, required=True, help="revision number")
@click.option("--to", "b", type=int, required=True, help="revision number")
@as_json_option
@remote
def plan_diff(client, plan_id: int, a: int, b: int, as_json: bool) -> None:
    """Differences between two revisions of a plan."""
    body = client.get(f"/api/v1/plans/{plan_id}/diff", a=a, b=b)
    if as_json:
        return emit(body, True)
    changes = body["changes"]
    if isinstance(changes, dict):
        changes = [{"field": k, "change": v} for k, v in changes.items()]
    if changes and all(isinstance(c, dict) for c in changes):
        emit(changes, False)
    else:
        for change in changes:
            click.echo(change)
