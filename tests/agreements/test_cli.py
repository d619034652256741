"""`stagegate agreement sign` over HTTP against a live server."""

from __future__ import annotations

import json

from tests.agreements.conftest import draft, propose


def test_sign_from_the_cli_until_active(client, people, stagegate):
    a = propose(client, people, draft(client, people))
    # A party's member who is not its admin: the server's reason, one line, exit 2.
    code, out, err = stagegate("agreement", "sign", a["id"], "--lab", "lab-c",
                               as_=people.c_member)
    assert code == 2 and out == "" and err.startswith("error: 403 (lab): ")
    assert len(err.splitlines()) == 1
    code, out, err = stagegate("agreement", "sign", a["id"], "--lab", "lab-c", "--version",
                               a["version"], as_=people.c_admin)
    assert code == 0 and out == f"agreement {a['id']} proposed (signed for lab-c)\n", err
    code, out, err = stagegate("agreement", "sign", a["id"], "--lab", "lab-d", "--json",
                               as_=people.d_admin)
    assert code == 0 and json.loads(out)["status"] == "active", err
    code, out, _ = stagegate("agreement", "list", "--status", "active", "--json",
                             as_=people.c_admin)
    assert [x["id"] for x in json.loads(out)] == [a["id"]]
    code, out, err = stagegate("agreement", "sign", 999999, "--lab", "lab-c",
                               as_=people.c_admin)
    assert code == 2 and out == "" and err.startswith("error: 404")
