"""Every incident action over the remote CLI against a real uvicorn server (both
databases): a partner submits naming a model, the coordinator triages, confirms,
embargoes, links and unlinks reports, merges a duplicate and resolves; refusals are one
line with exit code 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta


def one_line_error(code: int, out: str, err: str, starts: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith(starts) and len(err.splitlines()) == 1, err


def submit(stagegate, actor, title: str, *extra) -> int:
    code, out, err = stagegate("incident", "submit", "--title", title, "--occurred",
                               "2026-01-02", "--harm-type", "impersonation", "--severity",
                               "high", *extra, "--json", as_=actor)
    assert code == 0, err
    return json.loads(out)["id"]


def test_partner_report_through_triage_merge_and_resolution(world, client, stagegate):
    # A member of lab-b (a partner) reports what they saw of lab-a's model.
    code, out, err = stagegate(
        "incident", "submit", "--title", "Voice clone of a CEO", "--occurred", "2026-01-02",
        "--harm-type", "impersonation", "--severity", "high", "--summary", "A *cloned* voice.",
        "--model", "lab-a/m", "--report-text", "Heard on a call to our finance team.",
        "--report-url", "https://example.org/call", as_=world.b_member)
    assert code == 0, err
    assert out.startswith("incident ") and out.strip().endswith(
        "submitted: Voice clone of a CEO (lab-a/m)")
    incident_id = int(out.split()[1])
    read = client.get(f"/api/v1/incidents/{incident_id}", headers=world.coord.headers).json()
    assert read["models"] == ["lab-a/m"] and read["labs"] == ["lab-a"]
    assert read["report_count"] == 1 and read["reporter_id"] is not None
    code, out, err = stagegate("incident", "triage", incident_id, "--reason", "credible",
                               as_=world.coord)
    assert code == 0 and out == f"incident {incident_id} triaged (version 2)\n", err
    # The affected lab sees it; its member may not confirm it (acknowledging is theirs).
    code, out, err = stagegate("incident", "confirm", incident_id, as_=world.a_member)
    one_line_error(code, out, err, "error: 403: only coordinators triage incidents")
    code, out, err = stagegate("incident", "confirm", incident_id, "--version", "2",
                               as_=world.coord)
    assert code == 0 and out == f"incident {incident_id} confirmed (version 3)\n", err
    # A stale version is refused and names the field.
    code, out, err = stagegate("incident", "resolve", incident_id, "--version", "2",
                               as_=world.coord)
    one_line_error(code, out, err, "error: 409 (version):")

    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    code, out, err = stagegate("incident", "embargo", incident_id, "--until", until,
                               as_=world.coord)
    assert code == 0, err
    assert out.startswith(f"incident {incident_id} embargoed until {until}T00:00:00")
    assert out.strip().endswith("(version 4)")
    assert client.get(f"/api/v1/incidents/{incident_id}").status_code == 404  # public
    code, out, err = stagegate("incident", "embargo", incident_id, "--lift", "--json",
                               as_=world.coord)
    assert code == 0, err
    body = json.loads(out)
    assert body["embargo_until"] is None and body["version"] == 5
    assert client.get(f"/api/v1/incidents/{incident_id}").status_code == 200

    # A second report of the same event, filed separately: link its report, then unlink.
    dup = submit(stagegate, world.a_member, "CEO voice clone again", "--lab", "lab-a",
                 "--report-text", "Same call, reported by our own staff.")
    code, out, _ = stagegate("incident", "reports", dup, "--json", as_=world.coord)
    (report,) = [r["id"] for r in json.loads(out)]
    code, out, err = stagegate("incident", "link", incident_id, report, as_=world.coord)
    assert code == 0 and out == f"report {report} linked to incident {incident_id} " \
        "(2 reports)\n", err
    code, out, err = stagegate("incident", "reports", incident_id, as_=world.coord)
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SUBMITTED_AT", "URL", "TEXT"]
    assert len(lines) == 3 and int(lines[2].split()[0]) == report
    assert "https://example.org/call" in out and "Same call" in out
    code, out, err = stagegate("incident", "unlink", incident_id, report, as_=world.coord)
    assert code == 0 and out == f"report {report} unlinked from incident {incident_id} " \
        "(1 report)\n", err
    code, out, err = stagegate("incident", "link", incident_id, 999999, as_=world.coord)
    one_line_error(code, out, err, "error: 404 (report_id): no report 999999")
    code, out, err = stagegate("incident", "unlink", incident_id, report, as_=world.a_member)
    one_line_error(code, out, err, "error: 403")

    # Evidence added from the CLI, then the duplicate merged into the confirmed incident.
    code, out, err = stagegate("incident", "report", dup, "--text", "A recording exists.",
                               "--url", "https://example.org/rec", as_=world.a_member)
    assert code == 0 and out.startswith("report ") and \
        out.strip().endswith(f"added to incident {dup}"), err
    code, out, err = stagegate("incident", "merge", dup, "--into", f"#{incident_id}",
                               "--reason", "same call", as_=world.coord)
    assert code == 0, err
    assert out == f"incident {dup} merged into incident {incident_id}; its reports moved " \
        "there\n"
    code, out, _ = stagegate("incident", "show", dup, "--json", as_=world.coord)
    assert json.loads(out) == {"id": dup, "status": "duplicate", "duplicate_of": incident_id,
                               "location": f"/api/v1/incidents/{incident_id}"}
    code, out, _ = stagegate("incident", "reports", incident_id, "--json", as_=world.coord)
    assert len(json.loads(out)) == 3

    code, out, err = stagegate("incident", "resolve", incident_id, "--reason", "fixed",
                               as_=world.coord)
    assert code == 0 and out == f"incident {incident_id} resolved (version 7)\n", err
    # Nothing moves a resolved incident; the 409 says so in one line.
    code, out, err = stagegate("incident", "transition", incident_id, "triaged",
                               as_=world.coord)
    one_line_error(code, out, err, "error: 409 (to): an incident cannot move from resolved")
    # Each action is in the event log, with the reasons given.
    events = client.get("/api/v1/events", params={
        "entity_type": "incident", "entity_id": str(incident_id), "limit": 100},
        headers=world.coord.headers)
    assert events.status_code == 200, events.text
    logged = [(e["action"], e["data"].get("reason")) for e in events.json()["items"]]
    for action in [("triaged", "credible"), ("confirmed", None), ("embargo_set", None),
                   ("embargo_lifted", None), ("report_linked", None),
                   ("report_unlinked", None), ("merged", None), ("resolved", "fixed")]:
        assert action in logged, (action, logged)


def test_transition_reject_edit_and_json(world, client, stagegate):
    incident_id = submit(stagegate, world.b_member, "Spam about nothing", "--lab", "lab-a")
    # The reporter may revise a submission before anyone acknowledged it.
    code, out, err = stagegate("incident", "edit", incident_id, "--title", "Spam, revised",
                               "--severity", "low", "--model", "lab-a/m",
                               as_=world.b_member)
    assert code == 0 and out == f"incident {incident_id} revised (version 2): " \
        "Spam, revised\n", err
    code, out, err = stagegate("incident", "edit", incident_id, as_=world.b_member)
    one_line_error(code, out, err, "error: nothing to change")
    code, out, err = stagegate("incident", "transition", incident_id, "rejected", "--json",
                               as_=world.coord)
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "rejected" and body["models"] == ["lab-a/m"]
    assert body["severity"] == "low"
    # Closed to its reporter now; rejected goes back to triaged only.
    code, out, err = stagegate("incident", "edit", incident_id, "--title", "x",
                               as_=world.b_member)
    one_line_error(code, out, err, "error: 403")
    code, out, err = stagegate("incident", "confirm", incident_id, as_=world.coord)
    one_line_error(code, out, err, "error: 409 (to):")
    code, out, err = stagegate("incident", "transition", incident_id, "bogus",
                               as_=world.coord)
    one_line_error(code, out, err, "error: 422 (to):")
    code, out, err = stagegate("incident", "triage", incident_id, as_=world.coord)
    assert code == 0 and out == f"incident {incident_id} triaged (version 4)\n", err
    # An affected lab's admin may resolve a confirmed incident, and nothing else.
    code, out, err = stagegate("incident", "confirm", incident_id, as_=world.a_admin)
    one_line_error(code, out, err, "error: 403")
    assert stagegate("incident", "confirm", incident_id, as_=world.coord)[0] == 0
    code, out, err = stagegate("incident", "resolve", incident_id, as_=world.a_admin)
    assert code == 0 and out == f"incident {incident_id} resolved (version 6)\n", err


def test_bad_input_is_one_line_naming_the_field(world, stagegate):
    incident_id = submit(stagegate, world.a_member, "Something", "--lab", "lab-a")
    for args, starts in [
            (("incident", "confirm", "seven"), "error: (incident_id): 'seven' is not"),
            (("incident", "confirm", "0"), "error: (incident_id):"),
            (("incident", "confirm", 999999), "error: 404 (incident_id): no incident 999999"),
            (("incident", "show", "x1"), "error: (incident_id):"),
            (("incident", "link", incident_id, "r2"), "error: (report_id): 'r2' is not"),
            (("incident", "merge", incident_id, "--into", "abc"), "error: (duplicate_of):"),
            (("incident", "merge", incident_id, "--into", incident_id),
             "error: 422 (duplicate_of): an incident cannot duplicate itself"),
            (("incident", "embargo", incident_id, "--until", "next week"),
             "error: (embargo_until): 'next week' is not a date"),
            (("incident", "embargo", incident_id), "error: (embargo_until): give either"),
            (("incident", "embargo", incident_id, "--until", "2030-01-01", "--lift"),
             "error: (embargo_until): give either"),
            (("incident", "triage", incident_id, "--version", "v2"), "error: (version):"),
            (("incident", "submit", "--title", "x", "--occurred", "2026-01-01",
              "--harm-type", "spam", "--severity", "low", "--model", "lab-a/nope"),
             "error: 422 (models[0]): no model"),
            (("incident", "submit", "--title", "x", "--occurred", "2026-01-01",
              "--harm-type", "spam", "--severity", "low", "--report-url", "https://x.org"),
             "error: (reports[0].text): --report-url needs --report-text")]:
        code, out, err = stagegate(*args, as_=world.coord)
        one_line_error(code, out, err, starts)
    # Embargo with a time and an offset keeps the instant.
    code, out, err = stagegate("incident", "embargo", incident_id, "--until",
                               "2030-01-01T12:00+02:00", "--json", as_=world.coord)
    assert code == 0, err
    assert datetime.fromisoformat(json.loads(out)["embargo_until"]) \
        == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
