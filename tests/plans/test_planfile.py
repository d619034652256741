"""Plan files from the console: YAML aliases, anchors and deep nesting are one-line errors."""

from __future__ import annotations

import pytest

from tests.test_cli import run

LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9)
                    + "]\n" for i in range(8))
          + "model: lab-a/m\ntitle: *i\n")


@pytest.mark.parametrize("text,words", [
    (LAUGHS, ":1: YAML anchors (&a) are not accepted"),
    ("model: lab-a/m\ntitle: T\nstages: *x\n", "not valid YAML"),  # undefined alias
    ("model: lab-a/m\ntitle: T\nx: " + "[" * 40 + "]" * 40 + "\n", ":3: nested deeper than 32"),
])
def test_hostile_plan_files_are_one_line_errors_and_file_nothing(client, world, tmp_path,
                                                                 text, words):
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    code, out = run("plan", "file", str(path))
    assert code == 2
    assert words in out and len(out.strip().splitlines()) == 1, out
    assert client.get("/api/v1/plans", headers=world.coord.headers).json()["items"] == []
