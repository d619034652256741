"""`stagegate incident ...` over HTTP: list, search, show and export what you may see;
submit, edit and add reports; acknowledge for your lab; and, for coordinators, every
triage action of the console: move, merge, embargo, link and unlink reports."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime

import click

from app.clikit import Fail, as_json_option, emit, limit_option, remote

COLUMNS = ["id", "occurred", "severity", "status", "title"]
REPORT_COLUMNS = ["id", "submitted_at", "url", "text"]


class Number(click.ParamType):
    """A positive id (an optional leading `#`, as the console shows them). A bad one is
    one line naming the API's field, `error: (incident_id): ...`, exit code 2, like every
    other error (click's own would print the usage first)."""
    name = "integer"

    def __init__(self, field: str, what: str) -> None:
        self.field, self.what = field, what

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        from app.ids import MAX_ID

        text = str(value).strip().removeprefix("#")
        if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID:
            return int(text)
        raise Fail(f"({self.field}): {str(value)!r} is not {self.what}")


INCIDENT_ID = Number("incident_id", "an incident number")
REPORT_ID = Number("report_id", "a report number")


def _until(raw: str) -> str:
    """An embargo's end: a date (midnight UTC) or a date and time (UTC unless it carries
    an offset), as the aware ISO 8601 the API asks for."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Fail(f"(embargo_until): {raw!r} is not a date; give e.g. 2026-12-31 or "
                   "2026-12-31T12:00 (UTC unless an offset is given)") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def version_option(fn):
    return click.option("--version", type=Number("version", "a version number"),
                        help="refuse if the incident is no longer at this version "
                             "(default: the current one)")(fn)


def _current_version(client, incident_id: int, version: int | None) -> int | None:
    """The API asks which version a change was meant for; a command typed now means the
    incident as it is now. (A duplicate has none: the server then says why it refuses.)"""
    if version is not None:
        return version
    return client.get(f"/api/v1/incidents/{incident_id}").get("version")


@click.group()
def incident() -> None:
    """Incidents (over HTTP)."""


def _filters(fn):
    for name in ("lab", "model", "harm-type", "severity", "status"):
        fn = click.option(f"--{name}", help=f"filter by {name.replace('-', ' ')}")(fn)
    return fn


def _page(client, path: str, limit: int, **params) -> list[dict]:
    """The incidents of a list or search page: each item is a hit wrapping one incident
    (search hits keep their score and snippet next to the incident's own fields)."""
    rows, cursor = [], None
    while len(rows) < limit:
        page = client.get(path, cursor=cursor, limit=min(100, limit - len(rows)), **params)
        rows += [hit["incident"] | {k: hit[k] for k in ("score", "snippet")
                                    if hit.get(k) is not None} for hit in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor or not page["items"]:
            break
    return rows


@incident.command("list")
@_filters
@limit_option
@as_json_option
@remote
def incident_list(client, lab, model, harm_type, severity, status, limit, as_json) -> None:
    """Incidents you may see, newest first."""
    rows = _page(client, "/api/v1/incidents/", limit, lab=lab, model=model,
                 harm_type=harm_type, severity=severity, status=status)
    emit(rows, as_json, COLUMNS)


@incident.command("search")
@click.argument("query")
@_filters
@limit_option
@as_json_option
@remote
def incident_search(client, query, lab, model, harm_type, severity, status, limit,
                    as_json) -> None:
    """Full-text search of incidents."""
    rows = _page(client, "/api/v1/incidents/search", limit, q=query, lab=lab, model=model,
                 harm_type=harm_type, severity=severity, status=status)
    emit(rows, as_json, COLUMNS)


@incident.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="file to write (default: standard output)")
@click.option("--page-size", type=click.IntRange(1, 10_000), default=10_000,
              show_default=True, help="incidents fetched a request")
@remote
def incident_export(client, fmt: str, output, page_size: int) -> None:
    """Every incident you may see, in id order: one JSON array or one CSV file, fetched
    page by page (the export's `Link: rel="next"`), with progress on standard error."""
    path, count = f"/api/v1/incidents/export?format={fmt}&limit={page_size}", 0
    output.write("[" if fmt == "json" else "")
    while path:
        response = client.request("GET", path)
        if fmt == "json":
            rows = response.json()
            if rows:
                output.write(("," if count else "") + ",".join(json.dumps(r) for r in rows))
            count += len(rows)
        else:
            # Each page repeats the header line (its cells never hold a line break).
            _, _, body = response.text.partition("\n")
            output.write(body if count else response.text)
            count += sum(1 for _ in csv.reader(io.StringIO(body)))
        if output.name != "<stdout>":
            click.echo(f"{count} incidents", err=True)
        path = response.links.get("next", {}).get("url")
    output.write("]\n" if fmt == "json" else "")


@incident.command("show")
@click.argument("incident_id", type=INCIDENT_ID)
@as_json_option
@remote
def incident_show(client, incident_id: int, as_json: bool) -> None:
    """One incident."""
    body = client.get(f"/api/v1/incidents/{incident_id}")
    emit(body, as_json, None if as_json else
         COLUMNS + ["harm_types", "labs", "models", "embargo_until", "acknowledged_at",
                    "duplicate_of", "report_count", "version", "summary"])


@incident.command("submit")
@click.option("--title", required=True)
@click.option("--occurred", required=True, help="date (YYYY-MM-DD)")
@click.option("--harm-type", "harm_types", multiple=True, required=True,
              help="taxonomy harm type (repeat)")
@click.option("--severity", required=True, help="low, medium, high or critical")
@click.option("--summary", default="", help="Markdown")
@click.option("--lab", "labs", multiple=True, help="lab slug involved (repeat)")
@click.option("--model", "models", multiple=True, metavar="LAB/SLUG",
              help="model involved (repeat); its lab is then involved too")
@click.option("--stage", "stage_ids", multiple=True, type=Number("stage_ids", "a stage id"),
              help="release-plan stage id involved (repeat)")
@click.option("--checkpoint", "checkpoint_ids", multiple=True,
              type=Number("checkpoint_ids", "a checkpoint id"),
              help="checkpoint id involved (repeat)")
@click.option("--report-text", help="a first report (Markdown): what was seen, where; "
                                    "`-` reads it from standard input")
@click.option("--report-url", help="the first report's source (http or https)")
@click.option("--contact", help="how to reach you (kept for anonymous reports only)")
@as_json_option
@remote
def incident_submit(client, title, occurred, harm_types, severity, summary, labs, models,
                    stage_ids, checkpoint_ids, report_text, report_url, contact,
                    as_json) -> None:
    """Submit an incident; it enters the moderation queue as `submitted`. Name what it
    is about with --model LAB/SLUG and --lab SLUG: those labs' members see it at once."""
    if report_url and not report_text:
        raise Fail("(reports[0].text): --report-url needs --report-text")
    data = {"title": title, "occurred": occurred, "harm_types": list(harm_types),
            "severity": severity, "summary": summary, "labs": list(labs),
            "models": list(models), "stage_ids": list(stage_ids),
            "checkpoint_ids": list(checkpoint_ids)}
    if report_text:
        report = {"text": _text(report_text)}
        data["reports"] = [report | ({"url": report_url} if report_url else {})]
    if contact:
        data["reporter_contact"] = contact
    body = client.post("/api/v1/incidents/", data)
    if as_json:
        return emit(body, True)
    about = ", ".join(body.get("models") or body.get("labs") or [])
    click.echo(f"incident {body['id']} {body['status']}: {body['title']}"
               + (f" ({about})" if about else ""))


def _text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


@incident.command("edit")
@click.argument("incident_id", type=INCIDENT_ID)
@click.option("--title")
@click.option("--summary", help="Markdown")
@click.option("--occurred", help="date (YYYY-MM-DD)")
@click.option("--severity", help="low, medium, high or critical")
@click.option("--harm-type", "harm_types", multiple=True,
              help="taxonomy harm type (repeat; replaces the list)")
@click.option("--lab", "labs", multiple=True, help="lab slug (repeat; replaces the list)")
@click.option("--model", "models", multiple=True, metavar="LAB/SLUG",
              help="model (repeat; replaces the list)")
@version_option
@as_json_option
@remote
def incident_edit(client, incident_id, title, summary, occurred, severity, harm_types,
                  labs, models, version, as_json) -> None:
    """Revise an incident's fields (coordinators; its reporter while it is submitted and
    not yet acknowledged). Only the options given change."""
    changes = {k: v for k, v in {
        "title": title, "summary": summary, "occurred": occurred, "severity": severity,
        "harm_types": list(harm_types) or None, "labs": list(labs) or None,
        "models": list(models) or None}.items() if v is not None}
    if not changes:
        raise Fail("nothing to change: give --title, --summary, --occurred, --severity, "
                   "--harm-type, --lab or --model")
    changes["version"] = _current_version(client, incident_id, version)
    body = client.patch(f"/api/v1/incidents/{incident_id}", changes)
    if as_json:
        return emit(body, True)
    click.echo(f"incident {body['id']} revised (version {body['version']}): "
               f"{body['title']}")


@incident.command("acknowledge")
@click.argument("incident_id", type=INCIDENT_ID)
@version_option
@as_json_option
@remote
def incident_acknowledge(client, incident_id: int, version: int | None,
                         as_json: bool) -> None:
    """Acknowledge incident INCIDENT_ID for your lab (a member of a lab it affects): an
    open incident counts against your releases once confirmed or acknowledged."""
    version = _current_version(client, incident_id, version)
    body = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", {"version": version})
    if as_json:
        return emit(body, True)
    click.echo(f"incident {body['id']} {body['status']}, acknowledged at "
               f"{body['acknowledged_at']}: {body['title']}")


# ---- Triage: coordinators (an affected lab's admin may resolve a confirmed one) ----

def _transition(client, incident_id: int, to: str, reason: str | None,
                version: int | None, as_json: bool, duplicate_of: int | None = None) -> None:
    data = {"to": to, "version": _current_version(client, incident_id, version)}
    if reason:
        data["reason"] = reason
    if duplicate_of is not None:
        data["duplicate_of"] = duplicate_of
    body = client.post(f"/api/v1/incidents/{incident_id}/transitions", data)
    if as_json:
        return emit(body, True)
    if body["status"] == "duplicate":
        target = body.get("duplicate_of")
        click.echo(f"incident {body['id']} merged into incident {target}; its reports "
                   "moved there" if target else f"incident {body['id']} merged")
    else:
        click.echo(f"incident {body['id']} {body['status']} (version {body['version']})")


def _reason_option(fn):
    return click.option("--reason", help="why (kept in the event log)")(fn)


@incident.command("transition")
@click.argument("incident_id", type=INCIDENT_ID)
@click.argument("to", metavar="TO")
@_reason_option
@version_option
@as_json_option
@remote
def incident_transition(client, incident_id: int, to: str, reason: str | None,
                        version: int | None, as_json: bool) -> None:
    """Move incident INCIDENT_ID to TO: triaged, confirmed, resolved or rejected
    (coordinators; an affected lab's admin may resolve a confirmed one). A refused move
    says which are allowed. Merging a duplicate is `incident merge`."""
    _transition(client, incident_id, to, reason, version, as_json)


def _shortcut(name: str, to: str, doc: str) -> None:
    @click.argument("incident_id", type=INCIDENT_ID)
    @_reason_option
    @version_option
    @as_json_option
    @remote
    def command(client, incident_id: int, reason: str | None, version: int | None,
                as_json: bool) -> None:
        _transition(client, incident_id, to, reason, version, as_json)
    incident.command(name, help=doc)(command)


_shortcut("triage", "triaged", "Accept a submission for review: submitted (or rejected) "
          "→ triaged. Coordinators.")
_shortcut("confirm", "confirmed", "Confirm a triaged incident as real: it counts against "
          "the affected labs' releases, and is public unless embargoed. Coordinators.")
_shortcut("resolve", "resolved", "Close a confirmed incident as resolved (coordinators, "
          "or an admin of a lab it affects).")
_shortcut("reject", "rejected", "Reject a submitted or triaged incident. Coordinators.")


@incident.command("merge")
@click.argument("incident_id", type=INCIDENT_ID)
@click.option("--into", "target", type=Number("duplicate_of", "an incident number"),
              required=True, metavar="TARGET", help="the incident this one duplicates")
@_reason_option
@version_option
@as_json_option
@remote
def incident_merge(client, incident_id: int, target: int, reason: str | None,
                   version: int | None, as_json: bool) -> None:
    """Mark INCIDENT_ID as a duplicate of TARGET (coordinators): its reports move there
    and it points there for good."""
    _transition(client, incident_id, "duplicate", reason, version, as_json, target)


@incident.command("embargo")
@click.argument("incident_id", type=INCIDENT_ID)
@click.option("--until", metavar="DATE",
              help="hide it from the public until this date (midnight UTC) or date and "
                   "time (UTC unless an offset is given)")
@click.option("--lift", is_flag=True, help="lift the embargo now")
@version_option
@as_json_option
@remote
def incident_embargo(client, incident_id: int, until: str | None, lift: bool,
                     version: int | None, as_json: bool) -> None:
    """Set (--until DATE) or lift (--lift) an incident's embargo (coordinators): until
    then only coordinators, its reporter and the labs it affects see it."""
    if bool(until) == lift:
        raise Fail("(embargo_until): give either --until DATE or --lift")
    data = {"embargo_until": None if lift else _until(until),
            "version": _current_version(client, incident_id, version)}
    body = client.post(f"/api/v1/incidents/{incident_id}/embargo", data)
    if as_json:
        return emit(body, True)
    state = f"embargoed until {body['embargo_until']}" if body["embargo_until"] \
        else "embargo lifted"
    click.echo(f"incident {body['id']} {state} (version {body['version']})")


# ---- Reports: evidence; several incidents may share one ----

@incident.command("reports")
@click.argument("incident_id", type=INCIDENT_ID)
@as_json_option
@remote
def incident_reports(client, incident_id: int, as_json: bool) -> None:
    """The reports linked to an incident, oldest first."""
    emit(client.get(f"/api/v1/incidents/{incident_id}/reports"), as_json, REPORT_COLUMNS)


@incident.command("report")
@click.argument("incident_id", type=INCIDENT_ID)
@click.option("--text", required=True, help="Markdown; `-` reads it from standard input")
@click.option("--url", help="the source (http or https)")
@as_json_option
@remote
def incident_report(client, incident_id: int, text: str, url: str | None,
                    as_json: bool) -> None:
    """Add a report (evidence) to an incident you can see; one merged into another goes
    to that one."""
    data = {"text": _text(text)} | ({"url": url} if url else {})
    body = client.post(f"/api/v1/incidents/{incident_id}/reports", data)
    if as_json:
        return emit(body, True)
    click.echo(f"report {body['id']} added to incident {incident_id}")


@incident.command("link")
@click.argument("incident_id", type=INCIDENT_ID)
@click.argument("report_id", type=REPORT_ID)
@as_json_option
@remote
def incident_link(client, incident_id: int, report_id: int, as_json: bool) -> None:
    """Link report REPORT_ID (of any incident) to INCIDENT_ID too (coordinators)."""
    body = client.post(f"/api/v1/incidents/{incident_id}/links", {"report_id": report_id})
    if as_json:
        return emit(body, True)
    click.echo(f"report {report_id} linked to incident {body['id']} "
               f"({_reports(body['report_count'])})")


@incident.command("unlink")
@click.argument("incident_id", type=INCIDENT_ID)
@click.argument("report_id", type=REPORT_ID)
@as_json_option
@remote
def incident_unlink(client, incident_id: int, report_id: int, as_json: bool) -> None:
    """Unlink report REPORT_ID from INCIDENT_ID (coordinators); the report itself and its
    other links stay."""
    body = client.delete(f"/api/v1/incidents/{incident_id}/links/{report_id}")
    if as_json:
        return emit(body, True)
    click.echo(f"report {report_id} unlinked from incident {body['id']} "
               f"({_reports(body['report_count'])})")


def _reports(n: int) -> str:
    return f"{n} report" + ("" if n == 1 else "s")
