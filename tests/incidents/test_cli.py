"""`stagegate incident list|search|show` over HTTP: what an anonymous reader sees."""

from __future__ import annotations

import json


def test_list_search_and_show_only_what_the_reader_may_see(file_incident, stagegate):
    public = file_incident(to=("triaged", "confirmed"), title="Voice clone scam")
    hidden = file_incident(title="Cloned voice, not yet reviewed")
    code, out, err = stagegate("incident", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "OCCURRED", "SEVERITY", "STATUS", "TITLE"]
    assert [line.split()[0] for line in lines[1:]] == [str(public["id"])]
    code, out, _ = stagegate("incident", "search", "voice", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [public["id"]]
    code, out, _ = stagegate("incident", "search", "nothing-like-this")
    assert code == 0 and len(out.splitlines()) == 1  # the header only
    code, out, _ = stagegate("incident", "show", public["id"])
    assert code == 0
    shown = dict(line.split(None, 1) for line in out.splitlines() if " " in line.strip())
    assert shown["title"] == "Voice clone scam" and shown["status"] == "confirmed"
    # An unreviewed submission is not shown to the public: one line, exit 2.
    code, out, err = stagegate("incident", "show", hidden["id"])
    assert code == 2 and out == "" and err.startswith("error: 404")
    assert len(err.splitlines()) == 1


def test_export_follows_the_pages_into_one_file(file_incident, stagegate, tmp_path):
    public = [file_incident(to=("triaged", "confirmed"), title=f"Public {n}",
                            summary="two\nlines, \"quoted\"")["id"] for n in range(3)]
    file_incident(title="Not reviewed yet")
    code, out, err = stagegate("incident", "export", "--page-size", "2")
    assert code == 0, err
    assert [row["id"] for row in json.loads(out)] == public
    target = tmp_path / "incidents.csv"
    code, out, err = stagegate("incident", "export", "--format", "csv", "--page-size", "2",
                               "-o", str(target))
    assert code == 0, err
    import csv
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == public
    assert rows[0]["summary"] == "two\nlines, \"quoted\""
    assert err.splitlines() == ["2 incidents", "3 incidents"]  # progress, page by page
