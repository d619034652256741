"""Number cells keep their numbers on one line (issue: "88.\n29" on the GPT-2 card page,
where the site-wide `overflow-wrap: anywhere` broke reported values mid-number)."""

from __future__ import annotations

import re
from pathlib import Path

STYLE = Path(__file__).resolve().parents[2] / "static" / "style.css"


def test_number_cells_do_not_wrap():
    css = STYLE.read_text()
    rule = re.search(r"td\.num, th\.num \{([^}]*)\}", css)
    assert rule, "td.num, th.num rule missing"
    body = rule.group(1)
    assert "white-space: nowrap" in body and "overflow-wrap: normal" in body
    assert "font-variant-numeric: tabular-nums" in body
    # It comes after the site-wide rule it overrides (same specificity would not matter
    # for td.num, but keep the order obvious).
    assert css.index("overflow-wrap: anywhere") < rule.start()


def test_card_page_marks_reported_values_as_number_cells(client, world):
    from app.demo import load_demo

    list(load_demo(with_models=False))
    page = client.get("/models/openai/gpt-2").text
    cells = re.findall(r'<td class="num"><span class="mark-reported">([^<]*)</span>', page)
    assert "88.29" in cells and "74.31" in cells
