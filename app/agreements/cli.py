"""`stagegate agreement ...`: disclosure agreements over HTTP, as a lab or coordinator.

Every command talks to the registry (`--url` / STAGEGATE_URL, the token from
STAGEGATE_TOKEN or `stagegate login`); none opens a local database. Errors are one line,
exit code 2: the server's (`error: STATUS (FIELD): detail`) or the CLI's own, which name
where and which field (`error: --starts (starts_at): ...`, `error: a.yaml:4 (kind): ...`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path

import click

from app.clikit import Fail, as_json_option, emit, limit_option, remote

API = "/api/v1/agreements"
MAX_FILE_BYTES = 1024 * 1024
MAX_ID = 2**63 - 1
TIME_FIELDS = ("starts_at", "ends_at", "confidential_until")
TIME_HELP = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM] (UTC unless an offset is given)"
LIST_COLUMNS = ["id", "discloser", "status", "version", "title"]


@click.group()
def agreement() -> None:
    """Disclosure agreements (over HTTP)."""


# -- input checked here, so a mistake is one line naming the option and the API field --

class IdType(click.ParamType):
    """A positive id; anything else is one `error:` line, not click's usage block."""
    name = "ID"

    def __init__(self, field: str) -> None:
        self.field = field

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID:
            return int(text)
        where = param.opts[0] if param is not None and param.param_type_name == "option" \
            else (param.human_readable_name if param is not None else self.field)
        raise Fail(f"{where} ({self.field}): {value!r} is not an id (a whole number from 1)")


def parse_time(value: str, where: str) -> str:
    """An ISO 8601 date or time as the API wants it (aware; naive means UTC)."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Fail(f"{where}: {value!r} is not a date; use {TIME_HELP}") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _time_option(flag: str, field: str, help: str, **kwargs):
    def convert(ctx, param, value):
        return None if value is None else parse_time(value, f"{flag} ({field})")
    return click.option(flag, field, callback=convert, metavar="DATE", help=help, **kwargs)


def _stage_refs(ctx, param, values) -> list[dict]:
    refs = []
    for value in values:
        plan, sep, position = value.partition(":")
        if not (sep and plan.isascii() and plan.isdigit() and position.isascii()
                and position.isdigit() and int(plan) >= 1 and int(position) >= 1):
            raise Fail(f"--stage (scope.stages[{len(refs)}]): {value!r}: give PLAN:N, "
                       "e.g. 3:2 for stage 2 of plan 3")
        refs.append({"plan": int(plan), "position": int(position)})
    return refs


def _checkpoint_ids(ctx, param, values) -> list[int]:
    out = []
    for n, value in enumerate(values):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID):
            raise Fail(f"--checkpoint (scope.checkpoints[{n}]): {value!r} is not a "
                       "checkpoint id")
        out.append(int(text))
    return out


def version_option(fn):
    return click.option("--version", type=IdType("version"),
                        help="refuse if the agreement is no longer at this version "
                             "(default: the current one)")(fn)


AGREEMENT_ID = click.argument("agreement_id", metavar="ID", type=IdType("agreement_id"))


# -- agreement files (create, revise) ---------------------------------------------------

def _times_as_utc(data: dict) -> None:
    """YAML reads `2026-01-10` as a date and `2026-01-10 12:00` as a naive time; both,
    and ISO strings without an offset, mean UTC, as the options do."""
    for key in TIME_FIELDS:
        value = data.get(key)
        if isinstance(value, datetime):
            data[key] = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, date):
            data[key] = datetime.combine(value, dtime(0), tzinfo=UTC)
        elif isinstance(value, str):
            try:
                at = datetime.fromisoformat(value.strip())
            except ValueError:
                continue  # the schema names it, with its line
            data[key] = at if at.tzinfo else at.replace(tzinfo=UTC)


def load_agreement_file(path: Path, schema, prepare=None) -> dict:
    """A YAML or JSON file validated against `schema` here, so a mistake is one line with
    the file, line and field (`a.yaml:4 (scope.models[0]): ...`); returns the JSON body.
    Parsed like every client YAML: no aliases or anchors, bounded size and depth."""
    import yaml
    from pydantic import ValidationError

    from app.errors import Invalid, field_path
    from app.safeyaml import line_of, load_yaml

    if path.stat().st_size > MAX_FILE_BYTES:
        raise Fail(f"{path} (file): larger than {MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Fail(f"{path} (file): not UTF-8 text") from None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise Fail(f"{where} (file): not valid YAML/JSON: {problem}") from None
    try:
        data = load_yaml(text, field="file", max_bytes=MAX_FILE_BYTES)
    except Invalid as exc:
        detail = re.sub(r"^line (\d+): ", lambda m: f"{path}:{m[1]} (file): ", exc.detail)
        raise Fail(detail if detail != exc.detail else f"{path} (file): {exc.detail}") \
            from None
    if not isinstance(data, dict):
        raise Fail(f"{path} (file): an agreement file holds a mapping of fields "
                   "(title, kind, parties, scope, terms, starts_at, ends_at, ...)")
    if prepare is not None:
        prepare(data)
    _times_as_utc(data)
    try:
        checked = schema.model_validate(data)
    except ValidationError as exc:
        problems = [f"{path}:{line_of(node, e['loc']) or '?'} ({field_path(e['loc'])}): "
                    f"{' '.join(e['msg'].split())}" for e in exc.errors()]
        raise Fail("; ".join(problems)) from None
    return checked.model_dump(mode="json", exclude_unset=True)


# -- output -------------------------------------------------------------------------------

def _when(value: str | None) -> str:
    if not value:
        return "-"
    at = datetime.fromisoformat(value).astimezone(UTC)
    return at.strftime("%Y-%m-%d") if at.time() == dtime(0) else at.strftime("%Y-%m-%d %H:%M")


def _window(body: dict) -> str:
    return f"{_when(body['starts_at'])} to {_when(body['ends_at'])} UTC"


def _parties(body: dict) -> str:
    parties = body.get("parties") or []
    if not parties:
        return "-"
    signed = sum(1 for p in parties if p["signed"])
    return f"{', '.join(p['lab'] for p in parties)} (signed {signed} of {len(parties)})"


def _summary(body: dict) -> None:
    """A short account of a drafted or revised agreement, for people."""
    click.echo(f"agreement {body['id']} {body['status']} (version {body['version']}): "
               f"{body['title']}")
    emit({"discloser": body["discloser"], "parties": _parties(body),
          "window": _window(body)}, False)


def _done(body: dict, as_json: bool) -> None:
    if as_json:
        emit(body, True)
    else:
        _summary(body)


def _stage_words(stage: dict) -> str:
    return f"plan {stage['plan']} stage {stage['position']} ({stage['name']})"


# -- commands -----------------------------------------------------------------------------

def _looks_like_path(name: str) -> bool:
    if re.fullmatch(r"[a-z0-9_]+", name):
        return False  # a template name, even if a file of that name is here
    return name.endswith((".yaml", ".yml", ".json")) or "/" in name or "\\" in name \
        or Path(name).is_file()


@agreement.command("from-template")
@click.argument("name")
@click.option("--discloser", required=True, help="slug of the disclosing lab (yours)")
@click.option("--party", "parties", multiple=True, help="slug of a receiving lab (repeat)")
@click.option("--model", "models", multiple=True, help="LAB/MODEL it covers (repeat)")
@click.option("--stage", "stages", multiple=True, metavar="PLAN:N", callback=_stage_refs,
              help="stage N of plan PLAN it covers (repeat)")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="ID",
              callback=_checkpoint_ids, help="checkpoint id it covers (repeat)")
@_time_option("--starts", "starts_at", required=True, help=f"start of the term: {TIME_HELP}")
@_time_option("--ends", "ends_at", help="end of the term (default: the template's duration)")
@_time_option("--confidential-until", "confidential_until",
              help="hidden from all but the labs involved until then (default: always)")
@click.option("--title", help="instead of the template's title")
@as_json_option
@remote
def from_template(client, name: str, parties: tuple[str, ...], models: tuple[str, ...],
                  stages: list[dict], checkpoints: list[int], starts_at: str,
                  ends_at: str | None, confidential_until: str | None, title: str | None,
                  discloser: str, as_json: bool) -> None:
    """Draft an agreement from the registry's template NAME (e.g.
    non_commercial_access_2019), placeholders filled in; you must belong to the
    disclosing lab. Prints a summary (--json: the agreement)."""
    if _looks_like_path(name):
        # The API drafts only from the registry's own templates (TemplateIn.template is a
        # name), so a file of your own goes through `agreement create`.
        raise Fail(f"NAME (template): {name!r} is a file path; the registry drafts only from its "
                   "own templates, by name (e.g. non_commercial_access_2019). Write the "
                   "agreement out and use `stagegate agreement create FILE`")
    body = {"template": name, "discloser": discloser, "parties": list(parties),
            "scope": {"models": list(models), "stages": stages, "checkpoints": checkpoints},
            "starts_at": starts_at, "ends_at": ends_at,
            "confidential_until": confidential_until, "title": title}
    created = client.post(f"{API}/from-template",
                          {k: v for k, v in body.items() if v is not None})
    _done(created, as_json)


@agreement.command("create")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path))
@as_json_option
@remote
def agreement_create(client, path: Path, as_json: bool) -> None:
    """Draft an agreement written as YAML or JSON: discloser, title, kind, parties,
    scope {models, stages: [{plan, position}], checkpoints}, terms, non_commercial,
    terms_private, starts_at, ends_at, confidential_until. It is checked here first, so
    errors name the line and field. Dates without an offset are UTC."""
    from app.agreements.schemas import AgreementCreate

    created = client.post(f"{API}/", load_agreement_file(path, AgreementCreate))
    _done(created, as_json)


@agreement.command("revise")
@AGREEMENT_ID
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path))
@version_option
@as_json_option
@remote
def agreement_revise(client, agreement_id: int, path: Path, version: int | None,
                     as_json: bool) -> None:
    """Change a draft: the fields in FILE (YAML or JSON, as for `create`) replace the
    stored ones; fields left out stay. The file may be the one you drafted from
    (its `discloser` must then be the agreement's own)."""
    from app.agreements.schemas import AgreementUpdate

    current = client.get(f"{API}/{agreement_id}")

    def same_discloser(data: dict) -> None:
        # The draft's own file may be revised as it is; the discloser is fixed, though.
        if "discloser" in data and data.pop("discloser") != current["discloser"]:
            raise Fail(f"{path} (discloser): the disclosing lab of agreement "
                       f"{agreement_id} is {current['discloser']}; it cannot change")

    data = load_agreement_file(path, AgreementUpdate, same_discloser)
    data["version"] = version or data.get("version") or current["version"]
    revised = client.patch(f"{API}/{agreement_id}", data)
    _done(revised, as_json)


@agreement.command("list")
@click.option("--status", help="effective status: draft, proposed, active, expired, terminated")
@click.option("--lab", help="discloser or any party")
@click.option("--kind", help="research_access, pre_release_evaluation, "
                             "coordinated_disclosure or data_sharing")
@limit_option
@as_json_option
@remote
def agreement_list(client, status, lab, kind, limit, as_json) -> None:
    """Agreements you may see."""
    rows = client.items(f"{API}/", limit, status=status, lab=lab, kind=kind)
    emit(list(rows), as_json, LIST_COLUMNS)


@agreement.command("show")
@AGREEMENT_ID
@as_json_option
@remote
def agreement_show(client, agreement_id: int, as_json: bool) -> None:
    """One agreement: effective status and window, parties and their signatures, what it
    covers, and its terms (unless private to the signatories)."""
    body = client.get(f"{API}/{agreement_id}")
    if as_json:
        return emit(body, True)
    click.echo(f"agreement {body['id']}: {body['title']}")
    emit({"kind": body["kind"], "discloser": body["discloser"], "status": body["status"],
          "in_force": body["in_force"], "window": _window(body),
          "confidential_until": _when(body["confidential_until"]),
          "non_commercial": body["non_commercial"], "terms_private": body["terms_private"],
          "template": body["template"], "version": body["version"],
          "proposed_at": _when(body["proposed_at"]) if body["proposed_at"] else None,
          "activated_at": _when(body["activated_at"]) if body["activated_at"] else None,
          "terminated_at": _when(body["terminated_at"]) if body["terminated_at"] else None,
          "termination_reason": body["termination_reason"]}, False)
    click.echo("\nparties:")
    if body["parties"]:
        emit([{"lab": p["lab"], "signed": p["signed"], "signer": p["signer"],
               "signed_at": _when(p["signed_at"]) if p["signed_at"] else None}
              for p in body["parties"]], False, ["lab", "signed", "signer", "signed_at"])
    else:
        click.echo("none yet")
    scope = body["scope"]
    click.echo("\ncovers:")
    emit({"models": ", ".join(scope["models"]) or None,
          "stages": ", ".join(_stage_words(s) for s in scope["stages"]) or None,
          "checkpoints": ", ".join(map(str, scope["checkpoints"])) or None}, False)
    click.echo("\nterms:")
    if body["terms"] is None:
        click.echo("(private to the labs that signed)")
    else:
        click.echo(body["terms"].rstrip() or "(none yet)")


def _move(client, agreement_id: int, to: str, version: int | None, reason: str | None,
          as_json: bool, *, withdraw: bool = False) -> None:
    if version is None or withdraw:
        # The API asks which version the change was meant for; a command typed now means
        # the agreement as it is now.
        current = client.get(f"{API}/{agreement_id}")
        if withdraw and current["status"] != "proposed":
            raise Fail(f"ID (status): agreement {agreement_id} is {current['status']}; only "
                       "a proposal is withdrawn (an active one is ended with `terminate`)")
        version = version or current["version"]
    body = {"to": to, "version": version, "reason": reason}
    result = client.post(f"{API}/{agreement_id}/transitions",
                         {k: v for k, v in body.items() if v is not None})
    if as_json:
        return emit(result, True)
    word = "withdrawn, now " if withdraw else ""
    click.echo(f"agreement {result['id']} {word}{result['status']} "
               f"(version {result['version']})")


@agreement.command("propose")
@AGREEMENT_ID
@version_option
@as_json_option
@remote
def agreement_propose(client, agreement_id: int, version: int | None, as_json: bool) -> None:
    """Propose a draft to its parties (it needs terms, a party and a scope); each party's
    lab_admin then signs, and the last signature makes it active."""
    _move(client, agreement_id, "proposed", version, None, as_json)


@agreement.command("terminate")
@AGREEMENT_ID
@click.option("--reason", help="why it ends early (the registry requires one)")
@version_option
@as_json_option
@remote
def agreement_terminate(client, agreement_id: int, reason: str | None, version: int | None,
                        as_json: bool) -> None:
    """End a proposed or active agreement early, for the disclosing lab."""
    _move(client, agreement_id, "terminated", version, reason, as_json)


@agreement.command("withdraw")
@AGREEMENT_ID
@click.option("--reason", help="why (the registry requires one)")
@version_option
@as_json_option
@remote
def agreement_withdraw(client, agreement_id: int, reason: str | None, version: int | None,
                       as_json: bool) -> None:
    """Withdraw a proposal before every party has signed (it becomes terminated);
    refuses an agreement that is not proposed."""
    _move(client, agreement_id, "terminated", version, reason, as_json, withdraw=True)


@agreement.command("transition")
@AGREEMENT_ID
@click.argument("to")
@click.option("--reason", help="why (needed to terminate)")
@version_option
@as_json_option
@remote
def agreement_transition(client, agreement_id: int, to: str, reason: str | None,
                         version: int | None, as_json: bool) -> None:
    """Move agreement ID to status TO (proposed or terminated; the registry says which
    moves its status allows)."""
    _move(client, agreement_id, to, version, reason, as_json)


@agreement.command("sign")
@AGREEMENT_ID
@click.option("--lab", required=True, help="the party lab you sign for")
@click.option("--version", type=IdType("version"), help="refuse if the agreement changed since")
@as_json_option
@remote
def agreement_sign(client, agreement_id, lab, version, as_json) -> None:
    """Sign an agreement for one of your labs (a lab_admin of that party)."""
    body = client.post(f"{API}/{agreement_id}/signatures",
                       {k: v for k, v in {"lab": lab, "version": version}.items()
                        if v is not None})
    if as_json:
        return emit(body, True)
    click.echo(f"agreement {body['id']} {body['status']} (signed for {lab})")
