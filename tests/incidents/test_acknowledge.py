"""Issue "True verdicts" item 4: an unreviewed claim decides nothing until a coordinator
confirms it or a member of an affected lab acknowledges it. Here: the acknowledgement
itself (POST /api/v1/incidents/{id}/acknowledge, `stagegate incident acknowledge`), who
may give it, on which statuses, and what it shows."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db import session_scope
from app.events.tables import Event
from app.incidents.tables import Incident
from app.timeutil import freeze

URL = "/api/v1/incidents"
AT = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def _ack(client, incident_id, version, who=None, **kw):
    return client.post(f"{URL}/{incident_id}/acknowledge", json={"version": version},
                       headers=who.headers if who else {}, **kw)


def _field(r) -> str:
    return r.json()["errors"][0]["field"]


def test_an_anonymous_claim_is_acknowledged_by_the_affected_lab(client, world,
                                                                 file_incident):
    freeze(AT)
    # Anonymous, naming lab A's model only: lab A is affected through its model.
    inc = file_incident(who=None, labs=[], models=["lab-a/m"])
    assert inc["status"] == "submitted" and inc["acknowledged_at"] is None
    assert inc["labs"] == ["lab-a"]
    r = _ack(client, inc["id"], inc["version"], world.a_member)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "submitted" and got["version"] == inc["version"] + 1
    assert r.headers["etag"] == f'"{got["version"]}"'
    assert datetime.fromisoformat(got["acknowledged_at"]).replace(tzinfo=UTC) == AT
    # Who acknowledged is never shown, to anyone; the reporter stays hidden as before.
    assert "acknowledged_by" not in got and got["reporter_id"] is None
    assert client.get(f"{URL}/{inc['id']}", headers=world.a_admin.headers).json()[
        "acknowledged_at"] == got["acknowledged_at"]
    assert "acknowledged_by" not in client.get(f"{URL}/{inc['id']}",
                                               headers=world.coord.headers).json()
    # Lists and search carry it too (they build the same read from plain rows).
    hits = client.get(URL, headers=world.a_member.headers).json()["items"]
    assert [h["incident"]["acknowledged_at"] for h in hits] == [got["acknowledged_at"]]
    hits = client.get(f"{URL}/search", params={"q": "voice"},
                      headers=world.a_member.headers).json()["items"]
    assert [h["incident"]["acknowledged_at"] for h in hits] == [got["acknowledged_at"]]
    with session_scope(write=False) as s:
        row = s.get(Incident, inc["id"])
        assert row.acknowledged_by == world.a_member.principal.user_id
        events = s.query(Event).filter(Event.entity_type == "incident",
                                       Event.entity_id == str(inc["id"])).all()
    ack = [e for e in events if e.action == "acknowledged"]
    assert len(ack) == 1 and ack[0].actor == "a_member" and ack[0].visibility == "lab"
    assert ack[0].data["version"] == got["version"]
    # One acknowledgement stands: a second (by anyone of the lab) is a 409 naming it.
    r = _ack(client, inc["id"], got["version"], world.a_admin)
    assert r.status_code == 409 and _field(r) == "acknowledged_at"


def test_whoever_cannot_see_it_gets_the_404_of_a_missing_one(client, world, file_incident):
    inc = file_incident(who="a_member")
    missing = _ack(client, 10**9, 1, world.b_member)
    hidden = _ack(client, inc["id"], 1, world.b_member)
    assert missing.status_code == hidden.status_code == 404
    assert _field(missing) == _field(hidden) == "incident_id"
    assert hidden.json()["title"] == missing.json()["title"]
    assert _ack(client, inc["id"], 1).status_code == 401  # anonymous
    assert client.get(f"{URL}/{inc['id']}", headers=world.a_member.headers).json()[
        "acknowledged_at"] is None


def test_only_a_member_of_an_affected_lab_may_acknowledge(client, world, file_incident):
    # Lab B's member reports about lab A: the reporter sees it but cannot speak for A.
    inc = file_incident(who="b_member", labs=["lab-a"])
    r = _ack(client, inc["id"], 1, world.b_member)
    assert r.status_code == 403
    r = _ack(client, inc["id"], 1, world.coord)  # coordinators confirm instead
    assert r.status_code == 403
    # Optimistic locking like every incident write: the version is required and current.
    r = client.post(f"{URL}/{inc['id']}/acknowledge", json={},
                    headers=world.a_member.headers)
    assert r.status_code == 422 and _field(r) == "version"
    r = _ack(client, inc["id"], 7, world.a_member)
    assert r.status_code == 409 and _field(r) == "version"
    r = client.post(f"{URL}/{inc['id']}/acknowledge", json={},
                    headers={**world.a_member.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["acknowledged_at"] is not None
    # The reporter may no longer rewrite what lab A acknowledged; coordinators still may.
    r = client.patch(f"{URL}/{inc['id']}", json={"severity": "critical", "version": 2},
                     headers=world.b_member.headers)
    assert r.status_code == 403
    r = client.patch(f"{URL}/{inc['id']}", json={"severity": "low", "version": 2},
                     headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["acknowledged_at"] is not None


def test_which_statuses_may_be_acknowledged(client, world, file_incident):
    for path in (("triaged",), ("triaged", "confirmed")):
        inc = file_incident(to=path)
        r = _ack(client, inc["id"], inc["version"], world.a_member)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == path[-1] and r.json()["acknowledged_at"]
    for path in (("rejected",), ("triaged", "confirmed", "resolved")):
        inc = file_incident(to=path)
        r = _ack(client, inc["id"], inc["version"], world.a_member)
        assert r.status_code == 409 and _field(r) == "status", r.text
    target = file_incident(title="Target")
    dup = file_incident(title="Same")
    r = client.post(f"{URL}/{dup['id']}/transitions", headers=world.coord.headers,
                    json={"to": "duplicate", "version": dup["version"],
                          "duplicate_of": target["id"]})
    assert r.status_code == 200
    r = _ack(client, dup["id"], dup["version"] + 1, world.a_member)
    assert r.status_code == 409 and _field(r) == "status"


def test_openapi_documents_the_route(client):
    op = client.get("/schema/openapi.json").json()["paths"][
        "/api/v1/incidents/{incident_id}/acknowledge"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(op["responses"])
    assert any(p["name"].lower() == "if-match" for p in op.get("parameters", []))
    schema = client.get("/schema/openapi.json").json()["components"]["schemas"]
    assert "acknowledged_at" in schema["IncidentRead"]["properties"]


def test_cli_acknowledge_round_trip(world, file_incident, stagegate):
    inc = file_incident(who=None, labs=["lab-a"])
    code, out, err = stagegate("incident", "acknowledge", inc["id"], as_=world.b_member)
    assert code == 2 and err.startswith("error: 404")
    code, out, err = stagegate("incident", "acknowledge", inc["id"], as_=world.a_member)
    assert code == 0, err
    assert out.startswith(f"incident {inc['id']} submitted, acknowledged at ")
    code, out, err = stagegate("incident", "acknowledge", inc["id"], "--json",
                               as_=world.a_admin)
    assert code == 2 and err.startswith("error: 409 (acknowledged_at)")
    code, out, err = stagegate("incident", "show", inc["id"], "--json", as_=world.a_admin)
    assert code == 0 and '"acknowledged_at": "' in out
