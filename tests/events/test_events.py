import pytest
import sqlalchemy.exc
from sqlalchemy import text

from app.db import get_engine


def test_every_plan_change_is_an_event_with_a_digest(client, world):
    plan_id = world.plan(filed=True)
    h = world.a_member.headers
    client.patch(f"/api/v1/plans/{plan_id}", json={"version": 1, "title": "T2"}, headers=h)
    events = client.get("/api/v1/events", params={"entity_type": "plan",
                                                  "entity_id": str(plan_id)}).json()["items"]
    assert [e["action"] for e in events] == ["filed", "revised"]
    assert events[1]["actor"] == "a_member" and len(events[1]["digest"]) == 64
    assert events[0]["digest"] != events[1]["digest"]


def test_draft_events_are_hidden_from_outsiders(client, world):
    draft = world.plan(filed=False)
    query = {"entity_type": "plan", "entity_id": str(draft)}
    assert client.get("/api/v1/events", params=query).json()["items"] == []
    assert client.get("/api/v1/events", params=query,
                      headers=world.b_member.headers).json()["items"] == []
    assert len(client.get("/api/v1/events", params=query,
                          headers=world.a_member.headers).json()["items"]) == 1
    assert len(client.get("/api/v1/events", params=query,
                          headers=world.coord.headers).json()["items"]) == 1


def test_token_events_are_private(client, world):
    for actor in (world.a_member, world.b_member):
        client.post("/api/v1/tokens", json={}, headers=actor.headers)
    def actors(headers):
        items = client.get("/api/v1/events", params={"entity_type": "token"},
                           headers=headers).json()["items"]
        return sorted(e["actor"] for e in items)
    assert actors(world.b_member.headers) == ["b_member"]
    assert actors({}) == []
    assert actors(world.coord.headers) == ["a_member", "b_member"] + ["system"] * 4


@pytest.mark.parametrize("statement", ["UPDATE event SET action = 'forged'", "DELETE FROM event"])
def test_database_refuses_to_change_the_log(world, statement):
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
        with get_engine().begin() as conn:
            conn.execute(text(statement))
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event WHERE action = 'forged'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM event")).scalar() > 0
