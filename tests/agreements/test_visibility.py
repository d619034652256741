"""Who sees an agreement (and its terms) before and after confidential_until."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.timeutil import freeze, utcnow
from tests.agreements.conftest import API, active, draft, ok

VIEWERS = ["anonymous", "a_member", "c_admin", "b_member", "coord"]
# Before the date: the discloser, the parties and coordinators; afterwards everyone.
SEES = {"before": {"a_member", "c_admin", "coord"}, "after": set(VIEWERS)}


def headers(people, viewer: str) -> dict:
    return {} if viewer == "anonymous" else getattr(people, viewer).headers


@pytest.fixture
def confidential(client, people):
    until = utcnow() + timedelta(days=10)
    return active(client, people, confidential_until=until.isoformat(),
                  terms_private=False)


@pytest.mark.parametrize("when", ["before", "after"])
def test_visibility_table(client, people, confidential, when):
    until = datetime.fromisoformat(confidential["confidential_until"])
    freeze(until - timedelta(seconds=1) if when == "before" else until + timedelta(seconds=1))
    for viewer in VIEWERS:
        h = headers(people, viewer)
        r = client.get(f"{API}/{confidential['id']}", headers=h)
        listed = [a["id"] for a in ok(client.get(API + "/", headers=h))["items"]]
        if viewer in SEES[when]:
            assert r.status_code == 200, (viewer, when)
            assert r.json()["terms"] and listed == [confidential["id"]], (viewer, when)
        else:
            assert r.status_code == 404, (viewer, when)
            assert listed == [], (viewer, when)


def test_private_terms_only_for_signatories(client, people):
    until = utcnow() + timedelta(days=10)
    a = active(client, people, confidential_until=until.isoformat(), terms_private=True)
    freeze(until + timedelta(seconds=1))
    for viewer in VIEWERS:
        got = ok(client.get(f"{API}/{a['id']}", headers=headers(people, viewer)))
        assert got["terms_private"] is True
        if viewer in ("anonymous", "b_member"):
            assert got["terms"] is None and got["terms_html"] is None, viewer
            # Everything else about the agreement is public now.
            assert [p["lab"] for p in got["parties"]] == ["lab-c", "lab-d"]
        else:
            assert got["terms"].startswith("Use the weights"), viewer


def test_without_a_date_it_stays_confidential(client, people):
    a = active(client, people)
    assert a["confidential_until"] is None
    freeze(utcnow() + timedelta(days=3650))
    assert client.get(f"{API}/{a['id']}").status_code == 404
    assert client.get(f"{API}/{a['id']}", headers=people.b_member.headers).status_code == 404
    assert ok(client.get(f"{API}/{a['id']}", headers=people.c_admin.headers))["status"] \
        == "expired"


def test_drafts_only_for_the_discloser_and_coordinators(client, people):
    past = (utcnow() - timedelta(days=1)).isoformat()
    a = draft(client, people, confidential_until=past)
    for viewer in VIEWERS:
        r = client.get(f"{API}/{a['id']}", headers=headers(people, viewer))
        assert r.status_code == (200 if viewer in ("a_member", "coord") else 404), viewer


def test_events_follow_confidentiality(client, people, confidential):
    url = f"/api/v1/events?entity_type=agreement&entity_id={confidential['id']}"
    assert ok(client.get(url))["items"] == []
    freeze(datetime.fromisoformat(confidential["confidential_until"]) + timedelta(seconds=1))
    assert [e["action"] for e in ok(client.get(url))["items"]] == \
        ["proposed", "signed", "signed", "activated"]
