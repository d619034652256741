"""`stagegate agreement ...`: disclosure agreements from the console."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from app.auth.principal import SYSTEM
from app.clikit import as_json_option, emit, limit_option, remote
from app.timeutil import as_utc


@click.group()
def agreement() -> None:
    """Disclosure agreements."""


DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])


@agreement.command("from-template")
@click.argument("name")
@click.option("--discloser", required=True, help="slug of the disclosing lab")
@click.option("--party", "parties", multiple=True, help="slug of a receiving lab (repeat)")
@click.option("--model", "models", multiple=True, help="LAB/MODEL it covers (repeat)")
@click.option("--stage", "stages", multiple=True, help="PLAN_ID:POSITION it covers (repeat)")
@click.option("--checkpoint", "checkpoints", multiple=True, type=int,
              help="checkpoint id it covers (repeat)")
@click.option("--starts", required=True, type=DATE)
@click.option("--ends", type=DATE, help="default: the template's duration")
@click.option("--confidential-until", type=DATE)
@click.option("--title")
def from_template(name: str, discloser: str, parties: tuple[str, ...], models: tuple[str, ...],
                  stages: tuple[str, ...], checkpoints: tuple[int, ...], starts: datetime,
                  ends: datetime | None, confidential_until: datetime | None,
                  title: str | None) -> None:
    """Draft an agreement from template NAME (a name in app/agreements/templates/ or a
    path to a YAML file), as the console operator; prints the draft as JSON."""
    from app.agreements.schemas import ScopeIn, StageRef
    from app.agreements.service import instantiate_template, read_agreement
    from app.db import session_scope

    try:
        stage_refs = [StageRef(plan=int(p), position=int(n))
                      for p, _, n in (s.partition(":") for s in stages)]
    except ValueError:
        raise click.BadParameter("use PLAN_ID:POSITION, e.g. 3:2", param_hint="--stage")
    source = Path(name) if name.endswith((".yaml", ".yml")) else name
    scope = ScopeIn(models=list(models), stages=stage_refs, checkpoints=list(checkpoints))
    with session_scope() as session:
        created = instantiate_template(session, SYSTEM, source, discloser, list(parties),
                                       scope, as_utc(starts), as_utc(ends),
                                       as_utc(confidential_until), title)
        body = read_agreement(session, SYSTEM, created).model_dump(mode="json")
    click.echo(json.dumps(body, indent=2))


@agreement.command("list")
@click.option("--status", help="effective status, e.g. proposed, active")
@click.option("--lab", help="discloser or any party")
@click.option("--kind")
@limit_option
@as_json_option
@remote
def agreement_list(client, status, lab, kind, limit, as_json) -> None:
    """Agreements you may see (over HTTP)."""
    rows = client.items("/api/v1/agreements/", limit, status=status, lab=lab, kind=kind)
    emit(list(rows), as_json, ["id", "discloser", "status", "version", "title"])


@agreement.command("sign")
@click.argument("agreement_id", type=int)
@click.option("--lab", required=True, help="the party lab you sign for")
@click.option("--version", type=int, help="refuse if the agreement changed since")
@as_json_option
@remote
def agreement_sign(client, agreement_id, lab, version, as_json) -> None:
    """Sign an agreement for one of your labs (over HTTP)."""
    body = client.post(f"/api/v1/agreements/{agreement_id}/signatures",
                       {k: v for k, v in {"lab": lab, "version": version}.items()
                        if v is not None})
    if as_json:
        return emit(body, True)
    click.echo(f"agreement {body['id']} {body['status']} (signed for {lab})")
