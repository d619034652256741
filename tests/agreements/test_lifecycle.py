"""Drafting, proposing, signing, terminating and expiring agreements over HTTP."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from app.agreements import service
from app.db import session_scope
from app.timeutil import freeze
from tests.agreements.conftest import API, active, draft, ok, propose, real_checkpoints, sign


def events(client, people, agreement_id: int) -> list[str]:
    page = ok(client.get(f"/api/v1/events?entity_type=agreement&entity_id={agreement_id}",
                         headers=people.coord.headers))
    return [e["action"] for e in page["items"]]


def test_draft_propose_sign_activate(client, people):
    a = draft(client, people)
    assert a["status"] == "draft" and a["version"] == 1 and not a["in_force"]
    assert a["discloser"] == "lab-a" and a["non_commercial"] is True
    assert [p["lab"] for p in a["parties"]] == ["lab-c", "lab-d"]
    assert a["scope"]["models"] == ["lab-a/m"]
    # Terms render through the one Markdown path: bold kept, script gone.
    assert "<strong>research</strong>" in a["terms_html"] and "<script" not in a["terms_html"]

    a = propose(client, people, a)
    assert a["status"] == "proposed" and a["proposed_at"]
    a = sign(client, people.c_admin, a["id"], "lab-c")
    assert a["status"] == "proposed"
    signed = {p["lab"]: p for p in a["parties"]}
    assert signed["lab-c"]["signed"] and signed["lab-c"]["signer"] == "c_admin"
    assert signed["lab-c"]["signed_at"] and not signed["lab-d"]["signed"]
    a = sign(client, people.d_admin, a["id"], "lab-d")
    assert a["status"] == "active" and a["in_force"] and a["activated_at"]
    assert events(client, people, a["id"]) == ["drafted", "proposed", "signed", "signed",
                                               "activated"]


def test_client_cannot_set_status_or_version(client, people):
    r = client.post(API + "/", json={**_min(), "status": "active", "version": 7},
                    headers=people.a_member.headers)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"status", "version"}


def _min() -> dict:
    from tests.agreements.conftest import body
    return body()


def test_illegal_moves_name_the_allowed_ones(client, people):
    a = draft(client, people)
    url = f"{API}/{a['id']}/transitions"
    r = client.post(url, json={"to": "active", "version": 1}, headers=people.a_member.headers)
    assert r.status_code == 409 and r.json()["allowed"] == ["proposed"]
    assert r.json()["errors"][0]["field"] == "to"
    r = client.post(url, json={"to": "terminated", "version": 1, "reason": "x"},
                    headers=people.a_member.headers)
    assert r.status_code == 409 and "proposed" in r.json()["detail"]
    a = propose(client, people, a)
    r = client.post(url, json={"to": "active", "version": a["version"]},
                    headers=people.a_member.headers)
    assert r.status_code == 409 and "signed" in r.json()["detail"]
    assert r.json()["allowed"] == ["terminated"]
    r = client.post(url, json={"to": "expired", "version": a["version"]},
                    headers=people.a_member.headers)
    assert r.status_code == 409 and "ends_at" in r.json()["detail"]
    # Signing a draft is not possible either.
    b = draft(client, people)
    r = client.post(f"{API}/{b['id']}/signatures", json={"lab": "lab-c"},
                    headers=people.c_admin.headers)
    # A draft is invisible to the party, so it is simply not there.
    assert r.status_code == 404


def test_propose_needs_terms_parties_and_scope(client, people):
    a = draft(client, people, parties=[], terms="", scope={})
    r = client.post(f"{API}/{a['id']}/transitions", json={"to": "proposed", "version": 1},
                    headers=people.a_member.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "terms"


def test_signatures_by_wrong_role_or_lab(client, people, settings):
    a = propose(client, people, draft(client, people))
    url = f"{API}/{a['id']}/signatures"
    # A party member who is not its lab_admin.
    r = client.post(url, json={"lab": "lab-c"}, headers=people.c_member.headers)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "lab"
    # An admin of one party cannot sign for another.
    r = client.post(url, json={"lab": "lab-d"}, headers=people.c_admin.headers)
    assert r.status_code == 403
    # The discloser's admin signs nothing: lab-a is not a party.
    r = client.post(url, json={"lab": "lab-a"}, headers=people.a_admin.headers)
    assert r.status_code == 403 and "not a party" in r.json()["detail"]
    # A coordinator may read but not sign for a lab.
    r = client.post(url, json={"lab": "lab-c"}, headers=people.coord.headers)
    assert r.status_code == 403
    # An unrelated lab does not see the confidential agreement at all.
    r = client.post(url, json={"lab": "lab-b"}, headers=people.b_member.headers)
    assert r.status_code == 404
    r = client.post(url, json={"lab": "lab-c"})
    assert r.status_code == 401
    # Signing twice is a conflict.
    sign(client, people.c_admin, a["id"], "lab-c")
    r = client.post(url, json={"lab": "lab-c"}, headers=people.c_admin.headers)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "lab"


def test_patch_draft_only_with_optimistic_locking(client, people):
    a = draft(client, people)
    url = f"{API}/{a['id']}"
    h = people.a_member.headers
    r = client.patch(url, json={"title": "New title"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "version"
    a2 = ok(client.patch(url, json={"title": "New title", "parties": ["lab-c"],
                                    "version": 1}, headers=h))
    assert a2["title"] == "New title" and a2["version"] == 2
    assert [p["lab"] for p in a2["parties"]] == ["lab-c"]
    # A second writer who still holds version 1 loses, and nothing of theirs is kept.
    r = client.patch(url, json={"title": "Stale", "version": 1}, headers=h)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "version"
    assert ok(client.get(url, headers=h))["title"] == "New title"
    assert events(client, people, a["id"]) == ["drafted", "revised"]
    # If-Match works as well.
    r = client.patch(url, json={"kind": "data_sharing"}, headers={**h, "If-Match": '"2"'})
    assert ok(r)["kind"] == "data_sharing"
    # Other labs cannot edit; the discloser's lab cannot give itself as a party.
    r = client.patch(url, json={"parties": ["lab-a"], "version": 3}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parties"
    r = client.patch(url, json={"ends_at": "2000-01-01T00:00:00Z", "version": 3}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ends_at"
    a = propose(client, people, ok(client.get(url, headers=h)))
    r = client.patch(url, json={"title": "Late edit", "version": a["version"]}, headers=h)
    assert r.status_code == 409 and "draft" in r.json()["detail"]
    r = client.post(f"{API}/{a['id']}/transitions", json={"to": "terminated", "reason": "x",
                                                          "version": 1}, headers=h)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "version"


def test_scope_only_the_disclosers_work(client, people):
    r = client.post(API + "/", json=_min() | {"scope": {"models": ["lab-b/m"]}},
                    headers=people.a_member.headers)
    # lab-b's model is public, so it resolves, but lab-a cannot open it up.
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope.models"
    plan_b = people.plan(filed=True, lab="lab-b")
    r = client.post(API + "/", json=_min() | {"scope": {"stages": [{"plan": plan_b,
                                                                   "position": 3}]}},
                    headers=people.a_member.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope.stages"
    plan_a = people.plan(filed=True)
    real_checkpoints(people.model_a, "lab-a", 5, 9)
    real_checkpoints(people.model_b, "lab-b", 11)
    # Another lab's checkpoint and an id that does not exist answer alike: 422, the field.
    for ids, bad in [([5, 11], 1), ([404], 0), ([9, 2**63], 1), ([0], 0)]:
        r = client.post(API + "/", json=_min() | {"scope": {"checkpoints": ids}},
                        headers=people.a_member.headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == f"scope.checkpoints[{bad}]"
    a = draft(client, people, scope={"stages": [{"plan": plan_a, "position": 3}],
                                     "checkpoints": [5, 5, 9]})
    assert [(s["plan"], s["position"], s["name"]) for s in a["scope"]["stages"]] == \
        [(plan_a, 3, "774M")]
    # The drafting lab sees its own checkpoints; duplicates collapse.
    assert a["scope"]["checkpoints"] == [5, 9]
    r = client.post(API + "/", json=_min(), headers=people.b_member.headers)
    assert r.status_code == 403


def test_terminate_needs_reason_and_is_final(client, people):
    a = active(client, people)
    url = f"{API}/{a['id']}/transitions"
    h = people.a_member.headers
    r = client.post(url, json={"to": "terminated", "version": a["version"]}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    # A party cannot end it; only the discloser can.
    r = client.post(url, json={"to": "terminated", "version": a["version"], "reason": "x"},
                    headers=people.c_admin.headers)
    assert r.status_code == 403
    t = ok(client.post(url, json={"to": "terminated", "version": a["version"],
                                  "reason": "misuse found"}, headers=h))
    assert t["status"] == "terminated" and t["termination_reason"] == "misuse found"
    assert not t["in_force"] and t["terminated_at"]
    r = client.post(url, json={"to": "proposed", "version": t["version"]}, headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == []
    assert events(client, people, a["id"])[-1] == "terminated"


def test_active_reads_expired_from_ends_at(client, people):
    a = active(client, people)
    ends = datetime.fromisoformat(a["ends_at"])
    url, h = f"{API}/{a['id']}", people.c_admin.headers
    freeze(ends - timedelta(seconds=1))
    got = ok(client.get(url, headers=h))
    assert got["status"] == "active" and got["in_force"]
    assert [x["id"] for x in ok(client.get(API + "/?status=active", headers=h))["items"]] == \
        [a["id"]]
    freeze(ends + timedelta(seconds=1))
    got = ok(client.get(url, headers=h))
    assert got["status"] == "expired" and not got["in_force"]
    assert ok(client.get(API + "/?status=active", headers=h))["items"] == []
    assert [x["id"] for x in ok(client.get(API + "/?status=expired", headers=h))["items"]] \
        == [a["id"]]
    r = client.post(f"{url}/transitions", json={"to": "terminated", "reason": "late",
                                                "version": got["version"]},
                    headers=people.a_member.headers)
    assert r.status_code == 409 and r.json()["allowed"] == []


def test_unsigned_proposal_lapses_at_ends_at(client, people):
    a = propose(client, people, draft(client, people))
    freeze(datetime.fromisoformat(a["ends_at"]) + timedelta(seconds=1))
    r = client.post(f"{API}/{a['id']}/signatures", json={"lab": "lab-c"},
                    headers=people.c_admin.headers)
    assert r.status_code == 409 and "expired" in r.json()["detail"]


def test_list_filters_and_cursor(client, people):
    ids = [draft(client, people, kind=k)["id"] for k in
           ("research_access", "data_sharing", "research_access")]
    h = people.a_member.headers
    page = ok(client.get(API + "/?limit=2", headers=h))
    assert [x["id"] for x in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    rest = ok(client.get(f"{API}/?limit=2&cursor={page['next_cursor']}", headers=h))
    assert [x["id"] for x in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert len(ok(client.get(API + "/?kind=data_sharing", headers=h))["items"]) == 1
    assert len(ok(client.get(API + "/?lab=lab-d", headers=h))["items"]) == 3
    assert ok(client.get(API + "/?lab=lab-b", headers=h))["items"] == []
    r = client.get(API + "/?status=bogus", headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = client.get(API + "/?kind=bogus", headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"


def test_concurrent_last_signatures_activate_once(client, people):
    """Two parties sign at the same moment: both signatures land and it becomes active."""
    a = propose(client, people, draft(client, people))
    barrier = threading.Barrier(2)
    results = {}

    def signer(actor, lab):
        barrier.wait()
        with session_scope() as s:
            results[lab] = service.sign_agreement(s, actor.principal, a["id"], lab).status

    threads = [threading.Thread(target=signer, args=(people.c_admin, "lab-c")),
               threading.Thread(target=signer, args=(people.d_admin, "lab-d"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["active", "proposed"]
    got = ok(client.get(f"{API}/{a['id']}", headers=people.a_member.headers))
    assert got["status"] == "active" and all(p["signed"] for p in got["parties"])
    assert events(client, people, a["id"]).count("activated") == 1
