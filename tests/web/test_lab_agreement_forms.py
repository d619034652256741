"""Disclosure agreements in the lab forms over plain HTTP: draft from a template, propose,
sign from the party's own session, terminate with a reason; refusals appear in the page
with what was typed; CSRF; an unrelated lab sees nothing (both databases)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from litestar.testing import TestClient

from app.auth.passwords import set_password
from app.auth.principal import SYSTEM
from app.auth.service import create_user, get_user
from app.db import session_scope
from app.labs.service import create_lab
from app.web.lab_agreements import agreement_done_message
from tests.web.test_console_auth import HTML, PASSWORD, log_in, people, token_of  # noqa: F401

TEMPLATE = "non_commercial_access_2019"
TITLE = "GPT-2 774M partner access"


@pytest.fixture
def labs(people):  # noqa: F811
    """World's lab-a (a_admin) and lab-b, plus lab-b's admin and an unrelated lab-c."""
    with session_scope() as s:
        create_lab(s, SYSTEM, "lab-c", "Lab C")
        create_user(s, SYSTEM, "b_admin", lab_slug="lab-b", role="lab_admin")
        create_user(s, SYSTEM, "c_member", lab_slug="lab-c", role="lab_member")
        for name in ("a_admin", "b_admin", "c_member"):
            set_password(s, SYSTEM, get_user(s, name), f"{PASSWORD} {name}")
    return people


@pytest.fixture
def browsers(client, labs):
    """One signed-in client per person, each with its own cookies."""
    def open_as(name: str):
        # The app is already started by `client`; another client only keeps other cookies.
        other = TestClient(client.app)
        assert log_in(other, name).status_code == 303
        return other
    return open_as


def post_form(client, page_path: str, action: str, data: dict):
    page = client.get(page_path, headers=HTML)
    assert page.status_code == 200, page.text
    return client.post(action, data={**data, "_csrf_token": token_of(page.text)},
                       headers=HTML, follow_redirects=False)


def draft(client, **changes):
    data = {"template": TEMPLATE, "discloser": "lab-a", "parties": "lab-b",
            "models": "lab-a/m", "stages": "", "checkpoints": "",
            "starts": date.today().isoformat(), "ends": "", "title": TITLE, **changes}
    return post_form(client, "/lab/agreements", "/lab/agreements", data)


def api(client, people, agreement_id):  # noqa: F811
    return client.get(f"/api/v1/agreements/{agreement_id}",
                      headers=people.coord.headers).json()


def test_done_codes_are_a_fixed_map():
    assert agreement_done_message("agreement-proposed") == "Agreement proposed to its parties."
    for code in (None, "", "<b>x</b>", "Signed.", "agreement-owned"):
        assert agreement_done_message(code) is None


def test_draft_propose_sign_terminate_in_the_browser(client, browsers, labs):
    admin = browsers("a_admin")
    home = admin.get("/lab/", headers=HTML)
    assert 'href="/lab/agreements"' in home.text and 'href="/lab/members"' in home.text
    listing = admin.get("/lab/agreements", headers=HTML)
    assert listing.status_code == 200 and TEMPLATE in listing.text

    r = draft(admin)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.endswith("?done=agreement-drafted")
    agreement_id = int(re.match(r"/lab/agreements/(\d+)", location).group(1))
    page = admin.get(location, headers=HTML)
    assert "Agreement drafted from the template." in page.text
    assert "<h2>Non-commercial software access agreement</h2>" in page.text  # terms_html
    assert "Propose to the parties" in page.text and "model lab-a/m" in page.text
    stored = api(admin, labs, agreement_id)
    assert stored["status"] == "draft" and stored["template"] == TEMPLATE
    assert stored["title"] == TITLE and [p["lab"] for p in stored["parties"]] == ["lab-b"]
    assert TITLE in admin.get("/lab/agreements", headers=HTML).text

    # The party cannot see a draft at all.
    party = browsers("b_admin")
    assert party.get(f"/lab/agreements/{agreement_id}", headers=HTML).status_code == 404
    assert TITLE not in party.get("/lab/agreements", headers=HTML).text

    url = f"/lab/agreements/{agreement_id}"
    r = post_form(admin, url, f"{url}/propose", {"version": str(stored["version"])})
    assert r.status_code == 303 and r.headers["location"].endswith("done=agreement-proposed")
    assert api(admin, labs, agreement_id)["status"] == "proposed"

    # Now the party sees it, in its list and with a sign form; the discloser gets none.
    assert TITLE in party.get("/lab/agreements", headers=HTML).text
    party_page = party.get(url, headers=HTML)
    assert "Sign the agreement" in party_page.text and "Terminate" not in party_page.text
    assert "Sign the agreement" not in admin.get(url, headers=HTML).text
    r = post_form(party, url, f"{url}/sign", {"lab": "lab-b"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=agreement-activated")
    signed = party.get(r.headers["location"], headers=HTML)
    assert "every party has signed" in signed.text and "b_admin" in signed.text
    stored = api(admin, labs, agreement_id)
    assert stored["status"] == "active" and stored["parties"][0]["signer"] == "b_admin"

    r = post_form(admin, url, f"{url}/terminate",
                  {"version": str(stored["version"]), "reason": "the study is over"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=agreement-terminated")
    stored = api(admin, labs, agreement_id)
    assert stored["status"] == "terminated"
    assert stored["termination_reason"] == "the study is over"
    assert "the study is over" in admin.get(url, headers=HTML).text


def test_refusals_are_shown_with_the_input_kept(client, browsers, labs):
    admin = browsers("a_admin")
    r = draft(admin, starts="2026-13-45", title="Typed title kept")
    assert r.status_code == 422
    assert "is not a date" in r.text and 'value="2026-13-45"' in r.text
    assert 'value="Typed title kept"' in r.text and 'role="alert"' in r.text

    r = draft(admin, parties="lab-b, no-such-lab", title="Another typed title")
    assert r.status_code == 404
    assert "no lab &#39;no-such-lab&#39;" in r.text or "no lab 'no-such-lab'" in r.text
    assert 'value="lab-b, no-such-lab"' in r.text and 'value="Another typed title"' in r.text

    r = draft(admin, discloser="lab-b")
    assert r.status_code == 403 and "not a member" in r.text

    r = draft(admin, stages="twelve")
    assert r.status_code == 422 and "PLAN:POSITION" in r.text and 'value="twelve"' in r.text

    listed = admin.get("/api/v1/agreements?lab=lab-a", headers=labs.coord.headers).json()
    assert listed["items"] == []

    agreement_id = int(re.match(r"/lab/agreements/(\d+)",
                                draft(admin).headers["location"]).group(1))
    url = f"/lab/agreements/{agreement_id}"
    assert post_form(admin, url, f"{url}/propose", {"version": "1"}).status_code == 303

    # A party may not propose (it is not the discloser); shown in the page, nothing moves.
    party = browsers("b_admin")
    r = post_form(party, url, f"{url}/propose", {"version": "2"})
    assert r.status_code in (403, 409) and 'role="alert"' in r.text
    assert TITLE in r.text

    # A lab member of the party lab (not its admin) may not sign.
    member = browsers("b_member")
    r = post_form(member, url, f"{url}/sign", {"lab": "lab-b"})
    assert r.status_code == 403 and "only a lab_admin" in r.text

    # Terminating needs a reason; what was chosen stays.
    r = post_form(admin, url, f"{url}/terminate", {"version": "2", "reason": "   "})
    assert r.status_code == 422 and "say why" in r.text
    # A stale version is refused too, with the reason typed kept.
    r = post_form(admin, url, f"{url}/terminate", {"version": "1", "reason": "kept words"})
    assert r.status_code in (409, 412) and 'value="kept words"' in r.text
    assert api(admin, labs, agreement_id)["status"] == "proposed"


def test_no_csrf_token_is_refused(client, browsers, labs):
    admin = browsers("a_admin")
    r = admin.post("/lab/agreements", headers=HTML, follow_redirects=False, data={
        "template": TEMPLATE, "discloser": "lab-a", "parties": "lab-b",
        "starts": date.today().isoformat()})
    assert r.status_code == 403
    agreement_id = int(re.match(r"/lab/agreements/(\d+)",
                                draft(admin).headers["location"]).group(1))
    r = admin.post(f"/lab/agreements/{agreement_id}/propose", headers=HTML,
                   data={"version": "1"}, follow_redirects=False)
    assert r.status_code == 403
    assert api(admin, labs, agreement_id)["status"] == "draft"


def test_an_unrelated_lab_sees_nothing(client, browsers, labs):
    admin = browsers("a_admin")
    agreement_id = int(re.match(r"/lab/agreements/(\d+)",
                                draft(admin).headers["location"]).group(1))
    url = f"/lab/agreements/{agreement_id}"
    assert post_form(admin, url, f"{url}/propose", {"version": "1"}).status_code == 303
    stranger = browsers("c_member")
    listing = stranger.get("/lab/agreements", headers=HTML)
    assert listing.status_code == 200 and TITLE not in listing.text
    assert "no agreements yet" in listing.text
    page = stranger.get(url, headers=HTML)
    assert page.status_code == 404 and TITLE not in page.text
    for action, data in (("sign", {"lab": "lab-c"}), ("propose", {"version": "2"}),
                         ("terminate", {"version": "2", "reason": "mine now"})):
        r = post_form(stranger, "/lab/agreements", f"{url}/{action}", data)
        assert r.status_code in (403, 404), action
        assert TITLE not in r.text
    assert api(admin, labs, agreement_id)["status"] == "proposed"
    # Anonymous browsers are sent to sign in.
    anonymous = client.get("/lab/agreements", headers=HTML, follow_redirects=False)
    assert anonymous.status_code in (303, 401)
