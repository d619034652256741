"""Issue 7 item 4: a duplicate's reporter and labs learn nothing of a target they may not
see (embargoed, or another lab's): not its id in the answer, the Location header, the
event log (data or digest), nor through adding evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.incidents.service import state
from app.timeutil import digest, freeze

URL = "/api/v1/incidents"
EMBARGO = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def _events(client, headers, entity_id) -> list[dict]:
    r = client.get("/api/v1/events", params={"entity_type": "incident",
                                             "entity_id": str(entity_id), "limit": 200},
                   headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_duplicate_of_an_embargoed_incident_tells_its_reporter_nothing(
        client, world, file_incident, backend):
    freeze(EMBARGO - timedelta(days=2))
    coord = world.coord.headers
    target = file_incident(to=("triaged",), title="Embargoed target", labs=["lab-a"])
    r = client.post(f"{URL}/{target['id']}/embargo", headers=coord, json={
        "embargo_until": EMBARGO.isoformat(), "version": target["version"]})
    r = client.post(f"{URL}/{target['id']}/transitions", headers=coord,
                    json={"to": "confirmed", "version": r.json()["version"]})
    assert r.status_code == 200, r.text
    # Lab B's member reports the same thing; it is merged into the embargoed target.
    dup = file_incident(who="b_member", title="Same thing", labs=["lab-b"],
                        reports=[{"text": "our evidence"}])
    r = client.post(f"{URL}/{dup['id']}/transitions", headers=coord, json={
        "to": "duplicate", "version": dup["version"], "duplicate_of": target["id"]})
    assert r.status_code == 200 and r.json()["duplicate_of"] == target["id"]
    reports_before = client.get(f"{URL}/{target['id']}", headers=coord).json()["report_count"]

    outsider = world.b_member.headers
    r = client.get(f"{URL}/{dup['id']}", headers=outsider)
    assert r.status_code == 200
    assert r.json() == {"id": dup["id"], "status": "duplicate", "duplicate_of": None,
                        "location": None}
    assert "location" not in r.headers
    assert client.get(f"{URL}/{target['id']}", headers=outsider).status_code == 404

    # The event log: lab B sees that its incident became a duplicate, not of which.
    seen = [e for e in _events(client, outsider, dup["id"]) if e["action"] == "duplicate"]
    assert len(seen) == 1 and "duplicate_of" not in seen[0]["data"]
    with_target = digest(state(_Row(**{**_dup_state(client, coord, dup["id"]),
                                       "duplicate_of": target["id"]})))
    assert seen[0]["digest"] != with_target  # the digest cannot be brute-forced to the id
    full = [e for e in _events(client, coord, dup["id"])
            if e["action"] == "duplicate" and e["data"].get("duplicate_of") == target["id"]]
    assert full and full[0]["digest"] == with_target  # coordinators keep the whole record
    assert all(str(target["id"]) != e["entity_id"] or e["entity_type"] != "incident"
               for e in client.get("/api/v1/events", params={"limit": 200},
                                   headers=outsider).json()["items"])

    # Adding evidence to the duplicate would land on (and name) the hidden target.
    r = client.post(f"{URL}/{dup['id']}/reports", headers=outsider, json={"text": "more"})
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["field"] == "incident_id"
    assert not any(ch.isdigit() for ch in r.json()["detail"])
    assert client.get(f"{URL}/{target['id']}", headers=coord).json()["report_count"] == \
        reports_before

    # The affected lab sees the target, so it is told where the duplicate went.
    r = client.get(f"{URL}/{dup['id']}", headers=world.a_member.headers)
    assert r.status_code == 200  # reachable through its visible target
    assert r.json()["duplicate_of"] == target["id"]
    # Once the embargo lifts the target is public, and so is the link.
    freeze(EMBARGO + timedelta(seconds=1))
    r = client.get(f"{URL}/{dup['id']}", headers=outsider)
    assert r.json()["duplicate_of"] == target["id"]
    assert r.headers["location"] == f"{URL}/{target['id']}"
    r = client.post(f"{URL}/{dup['id']}/reports", headers=outsider, json={"text": "more"})
    assert r.status_code == 201, r.text


class _Row:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _dup_state(client, coord, dup_id) -> dict:
    """The duplicate's state as the service records it, read back through the service."""
    from app.db import session_scope
    from app.incidents.tables import Incident
    with session_scope(write=False) as s:
        return dict(state(s.get(Incident, dup_id)))
