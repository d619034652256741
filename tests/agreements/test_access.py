"""can_access and the checkpoint listing clause, across access levels and agreement states."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from app.agreements.service import can_access, checkpoint_visibility
from app.auth.principal import ANONYMOUS
from app.db import get_engine, session_scope
from app.labs.service import get_lab
from app.timeutil import freeze, utcnow
from tests.agreements.conftest import API, active, draft, ok, propose, real_checkpoints, sign

# Stands in for the checkpoint table, which another domain owns: same column names.
_meta = MetaData()
FAKE = Table("agreements_test_checkpoint", _meta, Column("id", Integer, primary_key=True),
             Column("model_id", Integer), Column("lab_id", Integer),
             Column("access_level", String(16)), Column("stage_id", Integer, nullable=True))


def lab_id(slug: str) -> int:
    with session_scope(write=False) as s:
        return get_lab(s, slug).id


def ckpt(id: int, model_id: int, lab: int, level: str = "partners", stage_id=None):
    return SimpleNamespace(id=id, model_id=model_id, lab_id=lab, access_level=level,
                           stage_id=stage_id)


def allowed(people, who: str, checkpoint) -> bool:
    principal = ANONYMOUS if who == "anonymous" else getattr(people, who).principal
    with session_scope(write=False) as s:
        return can_access(s, principal, checkpoint)


def test_access_levels(client, people):
    active(client, people)
    lab_a = lab_id("lab-a")
    for level, who_may in [("public", {"anonymous", "a_member", "c_member", "b_member",
                                       "coord"}),
                           ("partners", {"a_member", "c_member", "coord"}),
                           ("internal", {"a_member", "coord"}),
                           ("researchers", {"a_member", "coord"})]:
        c = ckpt(1, people.model_a, lab_a, level)
        for who in ("anonymous", "a_member", "c_member", "b_member", "coord"):
            assert allowed(people, who, c) == (who in who_may), (level, who)


def test_partner_access_follows_agreement_state(client, people):
    c = ckpt(1, people.model_a, lab_id("lab-a"))
    a = propose(client, people, draft(client, people))
    assert not allowed(people, "c_member", c)          # proposed, nobody signed
    sign(client, people.c_admin, a["id"], "lab-c")
    assert not allowed(people, "c_member", c)          # one of two parties signed
    a = sign(client, people.d_admin, a["id"], "lab-d")
    assert allowed(people, "c_member", c) and allowed(people, "d_admin", c)
    ends = datetime.fromisoformat(a["ends_at"])
    freeze(ends - timedelta(seconds=1))
    assert allowed(people, "c_member", c)
    freeze(ends + timedelta(seconds=1))
    assert not allowed(people, "c_member", c)          # expired by the clock
    freeze(None)
    ok(client.post(f"{API}/{a['id']}/transitions", json={
        "to": "terminated", "reason": "ended early", "version": a["version"]},
        headers=people.a_member.headers))
    assert not allowed(people, "c_member", c)


def test_not_before_starts_at(client, people):
    start = utcnow() + timedelta(days=2)
    active(client, people, starts_at=start.isoformat(),
           ends_at=(start + timedelta(days=5)).isoformat())
    c = ckpt(1, people.model_a, lab_id("lab-a"))
    assert not allowed(people, "c_member", c)
    freeze(start + timedelta(seconds=1))
    assert allowed(people, "c_member", c)


def test_scope_by_checkpoint_and_stage(client, people):
    lab_a = lab_id("lab-a")
    plan = people.plan(filed=True)
    real_checkpoints(people.model_a, "lab-a", 7)
    active(client, people, scope={"checkpoints": [7], "stages": [{"plan": plan,
                                                                  "position": 3}]})
    with session_scope(write=False) as s:
        from sqlmodel import select as sm_select

        from app.plans.tables import Stage
        stages = {st.position: st.id for st in s.exec(sm_select(Stage).where(
            Stage.plan_id == plan))}
    assert allowed(people, "c_member", ckpt(7, people.model_a, lab_a))
    assert not allowed(people, "c_member", ckpt(8, people.model_a, lab_a))
    assert allowed(people, "c_member", ckpt(8, people.model_a, lab_a, stage_id=stages[3]))
    assert not allowed(people, "c_member", ckpt(8, people.model_a, lab_a, stage_id=stages[4]))
    # Another lab's checkpoint with a matching id is not opened by lab-a's agreement.
    assert not allowed(people, "c_member", ckpt(7, people.model_b, lab_id("lab-b")))


@pytest.fixture
def fake_checkpoints(settings):
    _meta.create_all(get_engine())
    yield FAKE
    _meta.drop_all(get_engine())


def test_listing_clause_agrees_with_can_access(client, people, fake_checkpoints):
    lab_a, lab_b = lab_id("lab-a"), lab_id("lab-b")
    plan = people.plan(filed=True)
    active(client, people, scope={"models": ["lab-a/m"]})
    real_checkpoints(people.model_a, "lab-a", 9)
    active(client, people, parties=["lab-c"],
           scope={"stages": [{"plan": plan, "position": 3}], "checkpoints": [9]})
    rows = [ckpt(1, people.model_a, lab_a, "public"), ckpt(2, people.model_a, lab_a),
            ckpt(3, people.model_a, lab_a, "internal"), ckpt(4, people.model_b, lab_b),
            ckpt(5, people.model_b, lab_b, "internal"), ckpt(9, people.model_b, lab_b)]
    with session_scope() as s:
        s.execute(FAKE.insert(), [vars(r) for r in rows])
    expected_c = {1, 2}
    for who in ("anonymous", "a_member", "c_member", "d_admin", "b_member", "coord"):
        principal = ANONYMOUS if who == "anonymous" else getattr(people, who).principal
        with session_scope(write=False) as s:
            listed = set(s.execute(select(FAKE.c.id).where(
                checkpoint_visibility(principal, FAKE))).scalars())
            single = {r.id for r in rows if can_access(s, principal, r)}
        assert listed == single, who
        if who == "c_member":
            assert listed == expected_c
