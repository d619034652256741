"""Lab forms' ?done= carries a message code, never text: a crafted link shows nothing of
what it carries (both databases)."""

from __future__ import annotations

import re

import pytest

from app.web.forms import done_message
from tests.web.test_console_auth import HTML, people, token_of  # noqa: F401
from tests.web.test_forms import file_plan, member  # noqa: F401


def test_codes_map_to_fixed_messages_and_unknown_codes_to_nothing():
    assert done_message("plan-saved") == "Plan saved."
    assert done_message("plan-moved-active") == "Plan moved to active."
    assert done_message("stage-moved-2-released") == "Stage 2 moved to released."
    assert done_message("checkpoint-attached-3") == "Checkpoint attached to stage 3."
    assert done_message("checkpoint-detached") == "Checkpoint detached from its stage."
    for code in (None, "", "Plan saved.", "plan-moved-hacked", "stage-moved-2-owned",
                 "stage-moved-0-ready", "checkpoint-attached-3-ready", "stage-moved-2",
                 "<script>alert(1)</script>", "stage-moved-1-ready\n<b>x</b>"):
        assert done_message(code) is None, code


@pytest.mark.parametrize("done", ["<script>alert(1)</script>", "Your account is suspended",
                                  "Plan saved.", "plan-moved-<i>x</i>"])
def test_a_crafted_done_shows_nothing_of_it(member, people, done):  # noqa: F811
    r = file_plan(member)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=plan-saved")
    plan_id = int(re.match(r"/lab/plans/(\d+)", r.headers["location"]).group(1))
    page = member.get(f"/lab/plans/{plan_id}", params={"done": done}, headers=HTML)
    assert page.status_code == 200
    assert 'class="notice"' not in page.text
    for fragment in ("alert(1)", "&lt;script", "suspended", "Plan saved.", "<i>x</i>",
                     "&lt;i&gt;"):
        assert fragment not in page.text
    home = member.get("/lab/", params={"done": done}, headers=HTML)
    assert home.status_code == 200 and "alert(1)" not in home.text
    assert "suspended" not in home.text


def test_a_real_move_redirects_with_its_code(member, people):  # noqa: F811
    r = file_plan(member)
    plan_url = r.headers["location"].split("?")[0]
    page = member.get(r.headers["location"], headers=HTML)
    assert '<p class="notice" role="status">Plan saved.</p>' in page.text
    moved = member.post(f"{plan_url}/stages/1/move", headers=HTML, follow_redirects=False,
                        data={"to": "ready", "version": "1", "form": "stage-1",
                              "_csrf_token": token_of(page.text)})
    assert moved.status_code == 303, moved.text
    assert moved.headers["location"].endswith("?done=stage-moved-1-ready")
    assert "Stage 1 moved to ready." in member.get(moved.headers["location"], headers=HTML).text
