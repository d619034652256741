"""`stagegate incident ...`: list, search, show, submit and acknowledge incidents over
HTTP."""

from __future__ import annotations

import csv
import io
import json

import click

from app.clikit import as_json_option, emit, limit_option, remote

COLUMNS = ["id", "occurred", "severity", "status", "title"]


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
@click.argument("incident_id", type=int)
@as_json_option
@remote
def incident_show(client, incident_id: int, as_json: bool) -> None:
    """One incident."""
    body = client.get(f"/api/v1/incidents/{incident_id}")
    emit(body, as_json, None if as_json else COLUMNS + ["harm_types", "labs", "summary"])


@incident.command("submit")
@click.option("--title", required=True)
@click.option("--occurred", required=True, help="date (YYYY-MM-DD)")
@click.option("--harm-type", "harm_types", multiple=True, required=True,
              help="taxonomy harm type (repeat)")
@click.option("--severity", required=True)
@click.option("--summary", default="", help="Markdown")
@click.option("--lab", "labs", multiple=True, help="lab slug involved (repeat)")
@as_json_option
@remote
def incident_submit(client, title, occurred, harm_types, severity, summary, labs,
                    as_json) -> None:
    """Submit an incident; it enters the moderation queue as `submitted`."""
    body = client.post("/api/v1/incidents/", {
        "title": title, "occurred": occurred, "harm_types": list(harm_types),
        "severity": severity, "summary": summary, "labs": list(labs)})
    if as_json:
        return emit(body, True)
    click.echo(f"incident {body['id']} {body['status']}: {body['title']}")


@incident.command("acknowledge")
@click.argument("incident_id", type=int)
@click.option("--version", type=int,
              help="refuse if the incident is no longer at this version (default: the "
                   "current one)")
@as_json_option
@remote
def incident_acknowledge(client, incident_id: int, version: int | None,
                         as_json: bool) -> None:
    """Acknowledge incident INCIDENT_ID for your lab (a member of a lab it affects): an
    open incident counts against your releases once confirmed or acknowledged."""
    if version is None:
        # The API asks which version was acknowledged; a command typed now means the
        # incident as it is now.
        version = client.get(f"/api/v1/incidents/{incident_id}")["version"]
    body = client.post(f"/api/v1/incidents/{incident_id}/acknowledge", {"version": version})
    if as_json:
        return emit(body, True)
    click.echo(f"incident {body['id']} {body['status']}, acknowledged at "
               f"{body['acknowledged_at']}: {body['title']}")
