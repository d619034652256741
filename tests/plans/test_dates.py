"""Dates the gate reads come from the registry's clock: no release in the future, and only
a coordinator importing history may backdate one, on the record (DESIGN convention 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.agreements.service import sign_agreement, transition_agreement
from app.agreements.tables import AgreementSignature
from app.auth.principal import SYSTEM
from app.db import session_scope
from app.errors import Forbidden, Invalid
from app.timeutil import utcnow
from tests.factories import FOUR_STAGES


def today():
    return utcnow().date()


def gated_plan(client, world, *, gap_days: int = 63) -> dict:
    """Two open-weight sizes under gpt2-2019 (60 days between open-weight releases), the
    second planned `gap_days` after today."""
    r = client.post("/api/v1/plans", headers=world.a_member.headers, json={
        "model": "lab-a/m", "title": "Fast", "file": True, "policies": ["gpt2-2019"],
        "stages": [{"name": "small", "access_level": "public_weights",
                    "planned_date": today().isoformat()},
                   {"name": "large", "access_level": "public_weights",
                    "planned_date": (today() + timedelta(days=gap_days)).isoformat()}]})
    assert r.status_code == 201, r.text
    return r.json()


def move(client, actor, plan: dict, position: int, to: str, **extra):
    return client.post(f"/api/v1/plans/{plan['id']}/stages/{position}/transitions",
                       headers=actor.headers,
                       json={"to": to, "version": plan["version"], **extra})


def fetch(client, world, plan_id: int) -> dict:
    return client.get(f"/api/v1/plans/{plan_id}", headers=world.a_member.headers).json()


def released_event(client, world, plan_id: int) -> dict:
    """The latest stage_released event of the plan (the log is oldest first)."""
    page = client.get(f"/api/v1/events?entity_type=plan&entity_id={plan_id}",
                      headers=world.coord.headers).json()
    return [e for e in page["items"] if e["action"] == "stage_released"][-1]


def ready_plan(client, world, **filed) -> dict:
    r = client.post("/api/v1/plans", headers=world.a_member.headers,
                    json={"model": "lab-a/m", "title": "T", "stages": FOUR_STAGES,
                          "file": True, **filed})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert move(client, world.a_member, plan, 1, "ready").status_code == 200
    return fetch(client, world, plan["id"])


def refused(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["errors"][0]["field"] == "actual_date"
    return body


def test_the_spacing_rule_cannot_be_passed_with_a_future_date(client, world):
    # The defect: on 2026-12-07 stage 2 went out "on 2027-02-08", 63 days after stage 1,
    # so the 60-day rule held, and the home page showed a release in the future.
    plan = gated_plan(client, world)
    assert move(client, world.a_member, plan, 1, "ready").status_code == 200
    plan = fetch(client, world, plan["id"])
    assert move(client, world.a_member, plan, 1, "released").status_code == 200
    plan = fetch(client, world, plan["id"])
    assert move(client, world.a_member, plan, 2, "ready").status_code == 200
    plan = fetch(client, world, plan["id"])
    future = plan["stages"][1]["planned_date"]
    body = refused(move(client, world.a_member, plan, 2, "released", actual_date=future), 422)
    assert today().isoformat() in body["detail"] and future in body["detail"]
    after = fetch(client, world, plan["id"])
    assert after["version"] == plan["version"]
    assert after["stages"][1]["status"] == "ready" and after["stages"][1]["actual_date"] is None
    # Released today, the stage is judged on today: 0 days after stage 1 is too soon.
    r = move(client, world.a_member, plan, 2, "released")
    assert r.status_code == 409, r.text
    assert "gpt2-2019/months-between-stages" in r.json()["detail"]
    # A coordinator cannot release into the future either.
    refused(move(client, world.coord, plan, 2, "released", actual_date=future), 422)
    assert fetch(client, world, plan["id"])["version"] == plan["version"]


def test_tomorrow_is_refused_and_today_is_the_default(client, world):
    plan = ready_plan(client, world)
    tomorrow = (today() + timedelta(days=1)).isoformat()
    refused(move(client, world.a_member, plan, 1, "released", actual_date=tomorrow), 422)
    assert fetch(client, world, plan["id"])["version"] == plan["version"]
    r = move(client, world.a_member, plan, 1, "released", actual_date=today().isoformat())
    assert r.status_code == 200, r.text
    assert r.json()["stages"][0]["actual_date"] == today().isoformat()
    assert "backdated" not in released_event(client, world, plan["id"])["data"]


def test_a_lab_member_cannot_backdate_a_release(client, world):
    plan = ready_plan(client, world)
    for actor in (world.a_member, world.a_admin):
        body = refused(move(client, actor, plan, 1, "released", actual_date="2019-02-14"), 422)
        assert "coordinator" in body["detail"]
    after = fetch(client, world, plan["id"])
    assert after["version"] == plan["version"] and after["stages"][0]["status"] == "ready"


def test_a_coordinator_backdates_on_the_record(client, world):
    plan = ready_plan(client, world)
    r = move(client, world.coord, plan, 1, "released", actual_date="2019-02-14",
             reason="importing the 2019 history")
    assert r.status_code == 200, r.text
    assert r.json()["stages"][0]["actual_date"] == "2019-02-14"
    latest = released_event(client, world, plan["id"])
    assert latest["action"] == "stage_released"
    assert latest["data"]["backdated"] is True
    assert latest["data"]["actual_date"] == "2019-02-14"
    assert latest["data"]["recorded_on"] == today().isoformat()
    assert latest["data"]["gate"] == []


def test_a_backdated_import_is_judged_but_not_blocked(client, world):
    """History already happened: a deny is recorded in the event, not enforced."""
    plan = gated_plan(client, world)
    for position, day in ((1, "2019-02-14"), (2, "2019-02-24")):
        assert move(client, world.coord, plan, position, "ready").status_code == 200
        plan = fetch(client, world, plan["id"])
        r = move(client, world.coord, plan, position, "released", actual_date=day)
        assert r.status_code == 200, r.text
        plan = r.json()
    assert [s["actual_date"] for s in plan["stages"]] == ["2019-02-14", "2019-02-24"]
    latest = released_event(client, world, plan["id"])
    assert latest["data"]["backdated"] is True
    assert "gpt2-2019/months-between-stages" in latest["data"]["gate"]


def test_the_cli_reports_a_future_date(client, world, stagegate):
    plan = ready_plan(client, world)
    future = (today() + timedelta(days=63)).isoformat()
    code, _, err = stagegate("plan", "transition", plan["id"], "released", "--stage", 1,
                             "--actual-date", future, as_=world.a_member)
    assert code == 2 and "422" in err and "actual_date" in err, err
    assert fetch(client, world, plan["id"])["stages"][0]["status"] == "ready"


# -- agreements: the console operator's `at` -----------------------------------------

def proposed_agreement(client, world) -> int:
    now = utcnow()
    r = client.post("/api/v1/agreements/", headers=world.a_member.headers, json={
        "discloser": "lab-a", "title": "Access", "kind": "research_access",
        "parties": ["lab-b"], "scope": {"models": ["lab-a/m"]}, "terms": "Research only.",
        "starts_at": (now - timedelta(days=400)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat()})
    assert r.status_code == 201, r.text
    agreement = r.json()
    r = client.post(f"/api/v1/agreements/{agreement['id']}/transitions",
                    headers=world.a_member.headers,
                    json={"to": "proposed", "version": agreement["version"]})
    assert r.status_code == 200, r.text
    return agreement["id"]


def signatures(agreement_id: int) -> list:
    from sqlmodel import select

    with session_scope() as s:
        return list(s.exec(select(AgreementSignature.signed_at)
                           .where(AgreementSignature.agreement_id == agreement_id)))


def test_an_agreement_step_in_the_future_is_refused_even_for_the_operator(client, world):
    agreement_id = proposed_agreement(client, world)
    for at in (utcnow() + timedelta(days=2), datetime(2030, 1, 1)):
        with pytest.raises(Invalid) as caught, session_scope() as s:
            sign_agreement(s, SYSTEM, agreement_id, "lab-b", at=at)
        assert caught.value.field == "at"
    with pytest.raises(Invalid) as caught, session_scope() as s:
        transition_agreement(s, SYSTEM, agreement_id, "terminated", None, "late",
                             at=utcnow() + timedelta(days=2))
    assert caught.value.field == "at"
    # Anyone else may not name a time at all.
    with pytest.raises(Forbidden) as caught, session_scope() as s:
        sign_agreement(s, world.coord.principal, agreement_id, "lab-b",
                       at=utcnow() - timedelta(days=2))
    assert caught.value.field == "at"
    assert signatures(agreement_id) == []
    r = client.get(f"/api/v1/agreements/{agreement_id}", headers=world.a_member.headers)
    assert r.json()["status"] == "proposed"


def test_a_backdated_signature_is_recorded_as_backdated(client, world):
    agreement_id = proposed_agreement(client, world)
    past = utcnow() - timedelta(days=100)
    with session_scope() as s:
        sign_agreement(s, SYSTEM, agreement_id, "lab-b", at=past)
    [signed_at] = signatures(agreement_id)
    assert signed_at.replace(tzinfo=signed_at.tzinfo or UTC) == past
    page = client.get(f"/api/v1/events?entity_type=agreement&entity_id={agreement_id}",
                      headers=world.coord.headers).json()["items"]
    by_action = {e["action"]: e["data"] for e in page}
    for action in ("signed", "activated"):
        assert by_action[action]["backdated"] is True
        assert by_action[action]["at"] == past.isoformat()
        assert by_action[action]["recorded_on"] == today().isoformat()
    assert "backdated" not in by_action["proposed"]


# -- reported results ---------------------------------------------------------------

def report(client, world, content):
    return client.post(f"/api/v1/models/{world.model_a}/reported-results",
                       headers=world.a_member.headers,
                       json={"format": "lm-eval-harness", "content": content})


def stored(client, world) -> list:
    return client.get(f"/api/v1/evals/results?model={world.model_a}&source=reported",
                      headers=world.a_member.headers).json()["items"]


@pytest.mark.parametrize("when", [
    lambda: (utcnow() + timedelta(days=1)).timestamp(),
    lambda: (utcnow() + timedelta(days=1)).isoformat(),
    lambda: "2999-01-01",
    lambda: 1e20,
])
def test_a_reported_result_measured_in_the_future_is_refused(client, world, when):
    r = report(client, world, {"results": {"arc": {"acc,none": 0.5}}, "date": when()})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "content.date"
    assert stored(client, world) == []


def test_a_reported_result_measured_in_the_past_is_kept_and_dated_by_the_registry(client,
                                                                                  world):
    r = report(client, world, {"results": {"arc": {"acc,none": 0.5}}, "date": 1718000000.0})
    assert r.status_code == 201, r.text
    [row] = r.json()
    assert row["origin"]["date"] == "2024-06-10T06:13:20+00:00"
    # What the gate reads as "measured at" is when the registry stored it.
    created = datetime.fromisoformat(row["created_at"])
    assert abs(created.replace(tzinfo=created.tzinfo or UTC) - utcnow()) < timedelta(hours=1)
