"""Lab forms over plain HTTP: file and revise a plan, move stages; refusals (lifecycle,
validation, policy) appear in the form and nothing typed is lost (both databases)."""

from __future__ import annotations

import re

import pytest

from tests.web.test_console_auth import HTML, log_in, people, token_of  # noqa: F401

STAGE_1 = {"stage-0-name": "124M", "stage-0-parameter_count": "124000000",
           "stage-0-planned_date": "2019-02-14", "stage-0-access_level": "public_weights",
           "stage-0-artifacts": ["weights", "paper"],
           "stage-0-rationale": "Smallest first; *watch* for misuse."}
STAGE_2 = {"stage-1-name": "355M", "stage-1-access_level": "partners",
           "stage-1-planned_date": "2019-05-03"}


@pytest.fixture
def member(client, people):  # noqa: F811
    assert log_in(client, "a_member").status_code == 303
    return client


def file_plan(client, **changes):
    form = client.get("/lab/plans/new", headers=HTML)
    assert form.status_code == 200 and "lab-a/m" in form.text
    data = {"model": "lab-a/m", "title": "Staged release", "summary": "Four sizes.",
            "rows": "4", "file": "1", **STAGE_1, **STAGE_2, **changes,
            "_csrf_token": token_of(form.text)}
    return client.post("/lab/plans/new", data=data, headers=HTML, follow_redirects=False)


def test_file_a_plan_in_the_form(member, people):  # noqa: F811
    r = file_plan(member)
    assert r.status_code == 303
    plan_id = int(re.match(r"/lab/plans/(\d+)", r.headers["location"]).group(1))
    plan = member.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert plan["status"] == "filed" and plan["title"] == "Staged release"
    assert [(s["name"], s["access_level"]) for s in plan["stages"]] == \
        [("124M", "public_weights"), ("355M", "partners")]
    assert plan["stages"][0]["artifacts"] == ["weights", "paper"]
    assert plan["stages"][0]["parameter_count"] == 124_000_000
    page = member.get(r.headers["location"], headers=HTML)
    assert "Plan saved." in page.text and "Move stage 1" in page.text
    assert "Staged release" in member.get("/lab/", headers=HTML).text


def test_invalid_plan_names_the_row_and_keeps_everything_typed(member, people):  # noqa: F811
    r = file_plan(member, **{"stage-1-name": "", "stage-1-rationale": "typed but no name",
                             "title": "My careful title"})
    assert r.status_code == 422
    assert "stage row 2: name" in r.text
    assert 'value="My careful title"' in r.text and "typed but no name" in r.text
    assert "Smallest first; *watch* for misuse." in r.text and 'value="124000000"' in r.text
    assert re.search(r'value="paper"\s+checked', r.text)
    listed = member.get("/api/v1/plans?lab=lab-a", headers=people.a_member.headers).json()
    assert listed["items"] == []


def test_illegal_stage_move_shows_the_violation_and_keeps_the_input(member, people):  # noqa: F811
    location = file_plan(member).headers["location"].split("?")[0]
    page = member.get(location, headers=HTML)
    r = member.post(f"{location}/stages/1/move", headers=HTML, data={
        "to": "released", "version": "1", "form": "stage-1", "actual_date": "2019-02-14",
        "reason": "we think it is ready", "_csrf_token": token_of(page.text)})
    assert r.status_code == 409
    assert "a planned stage cannot become released" in r.text
    assert "Allowed now: ready, deferred, cancelled" in r.text
    assert 'value="we think it is ready"' in r.text and 'value="2019-02-14"' in r.text
    assert re.search(r'<option value="released" selected>', r.text)
    plan_id = int(location.rsplit("/", 1)[1])
    plan = member.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert plan["stages"][0]["status"] == "planned" and plan["version"] == 1

    # The legal path works from the same form.
    for to, version in (("ready", 1), ("released", 2)):
        page = member.get(location, headers=HTML)
        r = member.post(f"{location}/stages/1/move", headers=HTML, follow_redirects=False,
                        data={"to": to, "version": str(version), "form": "stage-1",
                              "_csrf_token": token_of(page.text)})
        assert r.status_code == 303, r.text
    plan = member.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert plan["status"] == "active" and plan["stages"][0]["status"] == "released"


def test_revise_a_plan_and_a_stale_form_loses_nothing(member, people):  # noqa: F811
    location = file_plan(member).headers["location"].split("?")[0]
    page = member.get(location, headers=HTML)
    assert 'name="stage-0-name"' in page.text and 'value="124M"' in page.text
    rows = {k: v for k, v in {**STAGE_1, **STAGE_2}.items()}
    data = {"rows": "4", "version": "1", "form": "revise", "title": "Revised title",
            "summary": "Now three sizes.", **rows, "stage-2-name": "774M",
            "stage-2-access_level": "partners", "_csrf_token": token_of(page.text)}
    r = member.post(location, data=data, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    plan_id = int(location.rsplit("/", 1)[1])
    plan = member.get(f"/api/v1/plans/{plan_id}", headers=people.a_member.headers).json()
    assert plan["title"] == "Revised title" and len(plan["stages"]) == 3
    assert plan["version"] == 2
    # The same form sent again (version 1) is stale: refused, and the text is still there.
    r = member.post(location, data={**data, "title": "Second thoughts"}, headers=HTML)
    assert r.status_code == 409 and 'value="Second thoughts"' in r.text
    assert member.get(f"/api/v1/plans/{plan_id}",
                      headers=people.a_member.headers).json()["title"] == "Revised title"


def test_another_lab_cannot_open_or_change_a_draft(client, people):  # noqa: F811
    assert log_in(client, "a_member").status_code == 303
    location = file_plan(client, file="").headers["location"].split("?")[0]
    client.post("/console/logout", headers=HTML,
                data={"_csrf_token": token_of(client.get("/lab/", headers=HTML).text)})
    assert log_in(client, "b_member").status_code == 303
    assert client.get(location, headers=HTML).status_code == 404
    page = client.get("/lab/", headers=HTML)
    r = client.post(f"{location}/move", headers=HTML, data={
        "to": "filed", "version": "1", "_csrf_token": token_of(page.text)})
    assert r.status_code == 404
    new = client.get("/lab/plans/new", headers=HTML)
    assert "lab-a/m" not in new.text and "lab-b/m" in new.text


def test_another_lab_cannot_edit_a_filed_plan(client, people):  # noqa: F811
    assert log_in(client, "a_member").status_code == 303
    location = file_plan(client).headers["location"].split("?")[0]
    client.cookies.clear()
    assert log_in(client, "b_member").status_code == 303
    assert client.get(location, headers=HTML).status_code == 403


def test_coordinator_may_use_lab_forms_for_any_lab(client, people):  # noqa: F811
    assert log_in(client, "coord").status_code == 303
    new = client.get("/lab/plans/new", headers=HTML)
    assert new.status_code == 200 and "lab-a/m" in new.text and "lab-b/m" in new.text


def test_public_page_link_only_when_the_public_may_read_the_plan(member, people):  # noqa: F811
    h = people.a_member.headers
    assert member.post("/api/v1/models/", headers=h, json={
        "lab": "lab-a", "slug": "secret", "name": "Secret", "public": False}).status_code == 201
    filed = file_plan(member).headers["location"].split("?")[0]
    private = file_plan(member, model="lab-a/secret").headers["location"].split("?")[0]
    withdrawn = file_plan(member, file="").headers["location"].split("?")[0]
    wid = int(withdrawn.rsplit("/", 1)[1])
    assert member.post(f"/api/v1/plans/{wid}/transitions", headers=h,
                       json={"to": "withdrawn", "version": 1}).json()["status"] == "withdrawn"
    pages = {loc: member.get(loc, headers=HTML) for loc in (filed, private, withdrawn)}
    assert "(filed, version 1)" in pages[private].text  # not a draft, yet not public
    assert "(withdrawn, version 2)" in pages[withdrawn].text
    links = {loc: ">public page</a>" in page.text for loc, page in pages.items()}
    assert links == {filed: True, private: False, withdrawn: False}
    # The link is right both ways: an anonymous reader gets exactly the linked pages.
    member.cookies.clear()
    for loc, linked in links.items():
        public = member.get(loc.replace("/lab/plans/", "/plans/"), headers=HTML)
        assert public.status_code == (200 if linked else 404)


def test_attach_a_hosted_checkpoint_to_a_stage_in_the_form(member, people):  # noqa: F811
    from tests.norms.test_compliance import add_checkpoint

    r = file_plan(member)
    location = r.headers["location"].split("?")[0]
    plan_id = int(location.rsplit("/", 1)[1])
    page = member.get(location, headers=HTML)
    assert "No checkpoint of this model is hosted yet" in page.text
    ckpt = add_checkpoint(people.model_a, "355M")
    page = member.get(location, headers=HTML)
    assert "355M (public): no stage" in page.text
    r = member.post(f"{location}/checkpoints", headers=HTML, follow_redirects=False,
                    data={"checkpoint": str(ckpt), "stage": "2",
                          "_csrf_token": token_of(page.text)})
    assert r.status_code == 303, r.text
    page = member.get(r.headers["location"], headers=HTML)
    assert "Checkpoint attached to stage 2." in page.text and "355M (public): stage 2" in page.text
    got = member.get(f"/api/v1/checkpoints/{ckpt}", headers=people.a_member.headers).json()
    assert got["stage"] == {"plan": plan_id, "stage": 2, "name": "355M"}
    # A stage that does not exist: the page again, naming the field, nothing changed.
    r = member.post(f"{location}/checkpoints", headers=HTML,
                    data={"checkpoint": str(ckpt), "stage": "9",
                          "_csrf_token": token_of(page.text)})
    assert r.status_code == 422 and "stage" in r.text
    got = member.get(f"/api/v1/checkpoints/{ckpt}", headers=people.a_member.headers).json()
    assert got["stage"]["stage"] == 2
