"""`stagegate card show` / `card edit` / `model edit` against a real uvicorn server (both
databases): the prose round-trips through a file, a stale version is refused with one
line and exit 2, --json prints the API's body, and only the lab edits its card."""

from __future__ import annotations

import json

import httpx
import pytest

from app.clikit import Fail
from app.models.cli import SECTIONS, parse_card

CARD = """## Model details

A 124M-parameter *transformer*.

```markdown
## Not a heading: inside a code block
```

## Intended use

Research on synthetic text detection.

### Out of scope

Impersonation.
"""


def model_body(live_server, world, model_id: int) -> dict:
    return httpx.get(f"{live_server}/api/v1/models/{model_id}",
                     headers=world.a_member.headers).json()


def test_edit_then_show_round_trips_the_prose(world, stagegate, live_server, tmp_path):
    path = tmp_path / "card.md"
    path.write_text(CARD)
    code, out, err = stagegate("card", "edit", "lab-a/m", "--file", path, as_=world.a_member)
    assert code == 0, err
    assert out.strip() == "card lab-a/m saved (version 2): intended use, model details"
    body = model_body(live_server, world, world.model_a)
    assert body["model_details"].startswith("A 124M-parameter *transformer*.")
    assert "## Not a heading: inside a code block" in body["model_details"]
    assert body["intended_use"] == ("Research on synthetic text detection.\n\n"
                                    "### Out of scope\n\nImpersonation.")
    # Rendered safely by the site's one Markdown function, on write.
    assert "<em>transformer</em>" in body["card_html"]["model_details"]

    # `card show` prints every section under its heading, with the version it showed.
    code, shown, err = stagegate("card", "show", "lab-a/m")
    assert code == 0, err
    assert shown.splitlines()[0].startswith("<!-- stagegate card lab-a/m version 2")
    assert "## Caveats and recommendations" in shown
    assert parse_card(shown)[0]["intended_use"] == body["intended_use"]
    # Saving what was shown, untouched, changes nothing; an edit of it saves one section.
    path.write_text(shown)
    code, out, _ = stagegate("card", "edit", "lab-a/m", "--file", path, as_=world.a_member)
    assert code == 0 and out.strip() == "card lab-a/m unchanged (version 2)"
    path.write_text(shown.replace("## Factors\n", "## Factors\n\nLanguage: English.\n"))
    code, out, err = stagegate("card", "edit", "lab-a/m", "--file", path, "--json",
                               as_=world.a_member)
    assert code == 0, err
    saved = json.loads(out)  # --json: the API's body
    assert saved["version"] == 3 and saved["factors"] == "Language: English."
    assert saved["intended_use"] == body["intended_use"]
    code, out, _ = stagegate("card", "show", str(world.model_a), "--json")
    assert json.loads(out)["factors"] == "Language: English."


def test_a_stale_version_is_refused_and_nothing_is_lost(world, stagegate, live_server,
                                                        tmp_path):
    code, shown, _ = stagegate("card", "show", "lab-a/m", as_=world.a_member)
    mine, theirs = tmp_path / "mine.md", tmp_path / "theirs.md"
    theirs.write_text(shown.replace("## Metrics\n", "## Metrics\n\nPerplexity.\n"))
    mine.write_text(shown.replace("## Metrics\n", "## Metrics\n\nAccuracy.\n"))
    assert stagegate("card", "edit", "lab-a/m", "--file", theirs, as_=world.a_member)[0] == 0
    # The file says which version it was shown at: the second writer is told, not obeyed.
    code, out, err = stagegate("card", "edit", "lab-a/m", "--file", mine, as_=world.a_member)
    assert code == 2 and out == ""
    assert err.startswith("error: 409 (version): version 1 is stale")
    assert len(err.splitlines()) == 1
    assert model_body(live_server, world, world.model_a)["metrics"] == "Perplexity."
    # --version says it explicitly; --version of the current one overwrites.
    code, _, err = stagegate("card", "edit", "lab-a/m", "--file", mine, "--version", "1",
                             as_=world.a_member)
    assert code == 2 and "409" in err
    code, out, _ = stagegate("card", "edit", "lab-a/m", "--file", mine, "--version", "2",
                             as_=world.a_member)
    assert code == 0 and out.strip() == "card lab-a/m saved (version 3): metrics"


def test_one_section_from_a_plain_file_and_model_edit(world, stagegate, live_server,
                                                      tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("## Known issues\n\nRepeats itself.\n")
    code, out, err = stagegate("card", "edit", "lab-a/m", "--file", notes, "--section",
                               "caveats_and_recommendations", as_=world.a_member)
    assert code == 0, err
    body = model_body(live_server, world, world.model_a)
    assert body["caveats_and_recommendations"] == "## Known issues\n\nRepeats itself."

    card = tmp_path / "card.md"
    card.write_text("## Training data\n\nWebText.\n")
    code, out, err = stagegate("model", "edit", "lab-a/m", "--name", "GPT-2 small",
                               "--licence", "MIT", "--card-file", card, as_=world.a_member)
    assert code == 0, err
    assert out.strip() == "model lab-a/m saved (version 3): licence, training data, name"
    body = model_body(live_server, world, world.model_a)
    assert (body["name"], body["licence"], body["training_data"]) == \
        ("GPT-2 small", "mit", "WebText.")
    assert body["caveats_and_recommendations"] == "## Known issues\n\nRepeats itself."
    code, out, _ = stagegate("model", "edit", "lab-a/m", "--name", "GPT-2 small", "--json",
                             as_=world.a_member)
    assert code == 0 and json.loads(out)["version"] == 3  # nothing to change: not saved


@pytest.mark.parametrize("text,message", [
    ("Just prose.\n", "line 1: text before the first section heading"),
    ("## Model details\n\nx\n## Uses\n\ny\n", "line 4: unknown section '## Uses'"),
    ("## Metrics\n\nx\n\n## metrics\n", "line 5: section 'Metrics' appears twice"),
    ("\n\n", "no section headings"),
])
def test_a_file_that_does_not_say_its_sections_is_refused_in_one_line(
        world, stagegate, tmp_path, text, message):
    path = tmp_path / "card.md"
    path.write_text(text)
    code, out, err = stagegate("card", "edit", "lab-a/m", "--file", path, as_=world.a_member)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and len(err.splitlines()) == 1


def test_refusals_are_one_line_with_exit_2(world, stagegate, tmp_path):
    path = tmp_path / "card.md"
    path.write_text("## Metrics\n\nx\n")
    cases = [
        (("card", "edit", "lab-b/m", "--file", path), world.a_member, "error: 403"),
        (("card", "edit", "lab-a/m", "--file", path), None, "error: 401"),
        (("card", "edit", "lab-a/nope", "--file", path), world.a_member,
         "error: no model 'lab-a/nope'"),
        (("card", "edit", "lab-a/m", "--file", tmp_path / "missing.md"), world.a_member,
         "error: cannot read"),
        (("model", "edit", "lab-a/m", "--licence", "free-for-all"), world.a_member,
         "error: 422"),
        (("model", "edit", "lab-a/m"), world.a_member, "error: nothing to change"),
        (("card", "show", "nope"), None, "error: model 'nope': give LAB/MODEL"),
    ]
    for args, actor, start in cases:
        code, out, err = stagegate(*args, as_=actor)
        assert code == 2 and out == "", (args, out)
        assert err.startswith(start) and len(err.splitlines()) == 1, (args, err)
    (tmp_path / "bad.md").write_bytes(b"## Metrics\n\n\xff\xfe\n")
    code, _, err = stagegate("card", "edit", "lab-a/m", "--file", tmp_path / "bad.md",
                             as_=world.a_member)
    assert code == 2 and err.strip().endswith("not UTF-8 text")
    # A file shown for one model is not saved onto another.
    shown = tmp_path / "shown.md"
    shown.write_text(stagegate("card", "show", "lab-a/m")[1])
    code, _, err = stagegate("card", "edit", "lab-b/m", "--file", shown, as_=world.b_member)
    assert code == 2 and "shown for lab-a/m, not lab-b/m" in err


def test_parse_card_keeps_sections_it_is_not_given():
    sections, marker = parse_card("<!-- stagegate card lab-a/m version 7: edit -->\n\n"
                                  "## Intended use\n\nReading.\n\n## Factors\n")
    assert marker == ("lab-a/m", 7)
    assert sections == {"intended_use": "Reading.", "factors": ""}
    assert set(sections) < set(SECTIONS)
    with pytest.raises(Fail):
        parse_card("# Title\n\n## Metrics\n")
