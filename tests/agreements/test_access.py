"""The checkpoint grant (app.access) over real checkpoint rows: access levels, agreement
states, scope by model, checkpoint and stage; the listing clause and the single-object
check are one function."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from app.access import may_download, visible_checkpoints
from app.auth.principal import ANONYMOUS
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.labs.service import get_lab
from app.plans.tables import Stage
from app.timeutil import freeze, utcnow
from tests.agreements.conftest import API, active, draft, ok, propose, sign

_NEXT = iter(range(100, 10_000))


def lab_id(slug: str) -> int:
    with session_scope(write=False) as s:
        return get_lab(s, slug).id


def ckpt(model_id: int, lab: int, level: str = "partners", stage_id=None, id=None) -> int:
    """A real checkpoint row (no files needed for the grant); returns its id."""
    with session_scope() as s:
        row = Checkpoint(id=id or next(_NEXT), model_id=model_id, lab_id=lab,
                         name=f"c{id or next(_NEXT)}", access_level=level, stage_id=stage_id,
                         manifest=[], manifest_digest="0" * 64, total_bytes=0,
                         parameter_count=0, created_at=utcnow() - timedelta(days=1))
        s.add(row)
        s.flush()
        return row.id


def allowed(people, who: str, checkpoint_id: int) -> bool:
    principal = ANONYMOUS if who == "anonymous" else getattr(people, who).principal
    with session_scope(write=False) as s:
        return may_download(s, principal, checkpoint_id)


def test_access_levels(client, people):
    active(client, people)
    lab_a = lab_id("lab-a")
    for level, who_may in [("public", {"anonymous", "a_member", "c_member", "b_member",
                                       "coord"}),
                           ("partners", {"a_member", "c_member", "coord"}),
                           ("internal", {"a_member", "coord"}),
                           ("researchers", {"a_member", "coord"})]:
        c = ckpt(people.model_a, lab_a, level)
        for who in ("anonymous", "a_member", "c_member", "b_member", "coord"):
            assert allowed(people, who, c) == (who in who_may), (level, who)


def test_partner_access_follows_agreement_state(client, people):
    c = ckpt(people.model_a, lab_id("lab-a"))
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
    c = ckpt(people.model_a, lab_id("lab-a"))
    assert not allowed(people, "c_member", c)
    freeze(start + timedelta(seconds=1))
    assert allowed(people, "c_member", c)


def _stages(plan: int) -> dict[int, int]:
    with session_scope(write=False) as s:
        return {st.position: st.id for st in s.exec(select(Stage).where(Stage.plan_id == plan))}


def test_scope_by_checkpoint_and_stage(client, people):
    """The issue's defect: an agreement scoped to stages 3-4 granted nothing, because no
    checkpoint had a stage. A checkpoint attached to stage 3 is now granted."""
    lab_a = lab_id("lab-a")
    plan = people.plan(filed=True)
    stages = _stages(plan)
    named = ckpt(people.model_a, lab_a, id=7)
    active(client, people, scope={"checkpoints": [7], "stages": [{"plan": plan,
                                                                  "position": 3}]})
    assert allowed(people, "c_member", named)
    assert not allowed(people, "c_member", ckpt(people.model_a, lab_a))
    assert allowed(people, "c_member", ckpt(people.model_a, lab_a, stage_id=stages[3]))
    assert not allowed(people, "c_member", ckpt(people.model_a, lab_a, stage_id=stages[4]))
    # Internal stays with the lab whatever the agreement covers.
    assert not allowed(people, "c_member", ckpt(people.model_a, lab_a, "internal",
                                                stage_id=stages[3]))
    # Another lab's checkpoint is not opened by lab-a's agreement.
    assert not allowed(people, "c_member", ckpt(people.model_b, lab_id("lab-b")))


def test_listing_clause_agrees_with_the_download_grant(client, people):
    lab_a, lab_b = lab_id("lab-a"), lab_id("lab-b")
    plan = people.plan(filed=True)
    stages = _stages(plan)
    active(client, people, scope={"models": ["lab-a/m"]})
    nine = ckpt(people.model_a, lab_a, "internal", id=9)
    active(client, people, parties=["lab-c"],
           scope={"stages": [{"plan": plan, "position": 3}], "checkpoints": [9]})
    ids = [ckpt(people.model_a, lab_a, "public"), ckpt(people.model_a, lab_a),
           ckpt(people.model_a, lab_a, "internal"), ckpt(people.model_b, lab_b),
           ckpt(people.model_b, lab_b, "internal"), nine,
           ckpt(people.model_a, lab_a, stage_id=stages[3])]
    expected_c = {ids[0], ids[1], ids[6]}
    for who in ("anonymous", "a_member", "c_member", "d_admin", "b_member", "coord"):
        principal = ANONYMOUS if who == "anonymous" else getattr(people, who).principal
        with session_scope(write=False) as s:
            listed = set(s.exec(select(Checkpoint.id).where(
                Checkpoint.id.in_(ids), visible_checkpoints(principal))).all())
            single = {i for i in ids if may_download(s, principal, i)}
        assert listed == single, who
        if who == "c_member":
            assert listed == expected_c
