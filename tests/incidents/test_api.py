from app.db import session_scope
from app.events.tables import Event
from tests.incidents.conftest import body

URL = "/api/v1/incidents"


def test_lifecycle_by_coordinator_and_lab_admin(client, world, file_incident):
    inc = file_incident(who="a_member", reports=[{"text": "Seen on a forum", "url": None}])
    assert inc["status"] == "submitted" and inc["report_count"] == 1
    assert inc["taxonomy_version"] == "1"
    move = f"{URL}/{inc['id']}/transitions"
    # A member cannot triage; the admin of an affected lab may only resolve.
    r = client.post(move, json={"to": "triaged", "version": 1}, headers=world.a_admin.headers)
    assert r.status_code == 403
    r = client.post(move, json={"to": "confirmed", "version": 1}, headers=world.coord.headers)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "to"
    r = client.post(move, json={"to": "triaged", "version": 1}, headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["status"] == "triaged"
    r = client.post(move, json={"to": "confirmed", "version": 1}, headers=world.coord.headers)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "version"
    r = client.post(move, json={"to": "confirmed", "version": 2}, headers=world.coord.headers)
    assert r.status_code == 200
    r = client.post(move, json={"to": "resolved", "version": 3}, headers=world.b_member.headers)
    assert r.status_code == 403
    r = client.post(move, json={"to": "resolved", "version": 3}, headers=world.a_admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    with session_scope() as s:
        events = s.query(Event).filter(Event.entity_type == "incident",
                                       Event.entity_id == str(inc["id"])).all()
    assert [e.action for e in events] == ["submitted", "triaged", "confirmed", "resolved"]
    assert {e.visibility for e in events} == {"lab"}


def test_unknown_harm_type_names_the_field(client, world):
    r = client.post(URL, json=body(harm_types=["spam", "memes"]), headers=world.a_member.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "harm_types[1]"
    r = client.post(URL, json=body(status="confirmed"), headers=world.a_member.headers)
    assert r.status_code == 422  # no client sets status


def test_visibility_of_a_single_incident(client, world, file_incident):
    inc = file_incident(who="a_member")
    path = f"{URL}/{inc['id']}"
    assert client.get(path).status_code == 404
    assert client.get(path, headers=world.b_member.headers).status_code == 404
    assert client.get(path, headers=world.a_admin.headers).status_code == 200
    got = client.get(path, headers=world.coord.headers).json()
    assert got["reporter_id"] == world.a_member.principal.user_id
    client.post(f"{path}/transitions", json={"to": "triaged", "version": 1},
                headers=world.coord.headers)
    client.post(f"{path}/transitions", json={"to": "confirmed", "version": 2},
                headers=world.coord.headers)
    public = client.get(path).json()
    assert public["title"] == "Voice clone scam" and public["reporter_id"] is None
    assert "<em>cloned</em>" in public["summary_html"]


def test_duplicate_redirects_and_merges_reports(client, world, file_incident):
    target = file_incident(to=("triaged", "confirmed"), title="Target")
    dup = file_incident(title="Dup", reports=[{"text": "extra evidence zebra"}])
    r = client.post(f"{URL}/{dup['id']}/transitions",
                    json={"to": "duplicate", "version": 1, "duplicate_of": target["id"]},
                    headers=world.coord.headers)
    assert r.status_code == 200, r.text
    for headers in ({}, world.coord.headers):
        r = client.get(f"{URL}/{dup['id']}", headers=headers)
        assert r.status_code == 200
        assert r.json() == {"id": dup["id"], "status": "duplicate",
                            "duplicate_of": target["id"],
                            "location": f"{URL}/{target['id']}"}
        assert r.headers["location"] == f"{URL}/{target['id']}"
    merged = client.get(f"{URL}/{target['id']}").json()
    assert merged["report_count"] == 1
    texts = [x["text"] for x in client.get(f"{URL}/{target['id']}/reports").json()]
    assert texts == ["extra evidence zebra"]
    hits = client.get(f"{URL}/search", params={"q": "zebra"}).json()["items"]
    assert [h["incident"]["id"] for h in hits] == [target["id"]]
    r = client.post(f"{URL}/{dup['id']}/transitions", json={"to": "triaged", "version": 2},
                    headers=world.coord.headers)
    assert r.status_code == 409


def test_anonymous_submission_rate_and_size_limits(client, world):
    for i in range(5):
        r = client.post(URL, json=body(title=f"anon {i}", reporter_contact="x@example.org"))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "submitted" and r.json()["reporter_id"] is None
    r = client.post(URL, json=body(title="one too many"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # Signed-in reporters are not limited by the anonymous bucket.
    assert client.post(URL, json=body(), headers=world.b_member.headers).status_code == 201
    r = client.post(URL, json=body(title="x" * 201), headers=world.b_member.headers)
    assert r.status_code == 422 and "title" in r.json()["errors"][0]["field"]
    r = client.post(URL, json=body(summary="x" * 300_000), headers=world.b_member.headers)
    assert r.status_code == 413
    # The anonymous submission is in the queue: coordinators see it, the public does not.
    assert client.get(f"{URL}/search", params={"q": "anon"}).json()["total"] == 0
    r = client.get(f"{URL}/search", params={"q": "anon"}, headers=world.coord.headers)
    assert r.json()["total"] == 5
    assert r.json()["items"][0]["incident"]["reporter_contact"] == "x@example.org"


def test_reports_link_to_several_incidents(client, world, file_incident):
    one = file_incident(reports=[{"text": "shared kestrel evidence"}])
    two = file_incident(title="Second")
    report_id = client.get(f"{URL}/{one['id']}/reports",
                           headers=world.a_member.headers).json()[0]["id"]
    r = client.post(f"{URL}/{two['id']}/links", json={"report_id": report_id},
                    headers=world.a_member.headers)
    assert r.status_code == 403
    r = client.post(f"{URL}/{two['id']}/links", json={"report_id": report_id},
                    headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["report_count"] == 1
    q = client.get(f"{URL}/search", params={"q": "kestrel"}, headers=world.coord.headers)
    assert q.json()["total"] == 2
    r = client.delete(f"{URL}/{two['id']}/links/{report_id}", headers=world.coord.headers)
    assert r.status_code == 200 and r.json()["report_count"] == 0
    q = client.get(f"{URL}/search", params={"q": "kestrel"}, headers=world.coord.headers)
    assert q.json()["total"] == 1


def test_export_respects_visibility(client, world, file_incident):
    public = file_incident(to=("triaged", "confirmed"), title="Public one, with comma")
    file_incident(title="Private one")
    r = client.get(f"{URL}/export", params={"format": "json"})
    assert r.status_code == 200
    assert [x["title"] for x in r.json()] == [public["title"]]
    r = client.get(f"{URL}/export", params={"format": "json"}, headers=world.a_member.headers)
    assert len(r.json()) == 2
    r = client.get(f"{URL}/export", params={"format": "csv"})
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["title"] for x in rows] == [public["title"]]
    assert rows[0]["labs"] == "lab-a" and rows[0]["harm_types"] == "impersonation"
    assert client.get(f"{URL}/export", params={"format": "xml"}).status_code == 422
