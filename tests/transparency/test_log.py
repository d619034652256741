"""The transparency log as users meet it: every event one leaf in its own transaction,
gapless under concurrent writers, commitments that open once readable (an embargo's
leaf reveals nothing before it lifts), answers that name their leaf, a release's
verdicts on the record, and a monitor (`stagegate log verify`) that catches a database
owner rewriting or deleting history, and a forked log."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.db import get_engine, session_scope
from app.events.tables import Event
from app.plans.schemas import PlanCreate
from app.plans.service import file_plan
from app.timeutil import freeze
from app.transparency import merkle
from app.transparency.log import tree_size
from app.transparency.tables import LogCheckpoint, LogLeaf, LogNode
from tests.factories import FOUR_STAGES


@pytest.fixture(autouse=True)
def checkpoint_every_read(monkeypatch):
    # A checkpoint on every read (not every few seconds), so each step sees its writes.
    monkeypatch.setenv("STAGEGATE_LOG_CHECKPOINT_S", "0")


def leaves_and_events():
    with session_scope(write=False) as s:
        leaves = list(s.execute(select(LogLeaf.idx, LogLeaf.event_id).order_by(LogLeaf.idx)))
        events = list(s.execute(select(Event.id).order_by(Event.id)).scalars())
        return leaves, events, tree_size(s)


def assert_log_whole():
    leaves, events, size = leaves_and_events()
    assert [i for i, _ in leaves] == list(range(len(leaves))) == list(range(size))
    assert sorted(e for _, e in leaves) == events  # every event once, no other leaf


def file_public_plan(world, title="Staged release"):
    with session_scope() as s:
        return file_plan(s, world.a_member.principal, PlanCreate(
            model="lab-a/m", title=title, stages=FOUR_STAGES, file=True)).id


def test_every_event_is_one_leaf_and_a_failed_write_leaves_none(settings, world):
    world.plan(filed=True)
    assert_log_whole()
    _, before, size = leaves_and_events()
    with pytest.raises(RuntimeError), session_scope() as s:
        file_plan(s, world.a_member.principal, PlanCreate(
            model="lab-a/m", title="Never filed", stages=FOUR_STAGES, file=True))
        s.flush()
        raise RuntimeError("the request failed after the event was written")
    leaves, events, size_after = leaves_and_events()
    assert events == before and size_after == size
    assert_log_whole()
    # In event order: a transaction's events get consecutive leaves in id order.
    assert [e for _, e in leaves] == sorted(e for _, e in leaves)


def test_concurrent_writers_never_share_an_index_or_leave_a_gap(settings, world):
    errors = []

    def writer(n):
        try:
            for k in range(6):
                file_public_plan(world, f"plan {n}.{k}")
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert_log_whole()
    leaves, _, size = leaves_and_events()
    assert size >= 36
    # The stored tree is the tree of the stored leaves.
    with session_scope(write=False) as s:
        data = [row.encode() for row in s.execute(
            select(LogLeaf.leaf).order_by(LogLeaf.idx)).scalars()]
        stored = merkle.tree_root(size, __import__("app.transparency.log", fromlist=["x"])
                                  .reader(s))
    assert stored == merkle.MemoryTree([merkle.leaf_hash(d) for d in data]).root()


def _checkpoint(client):
    r = client.get("/api/v1/log/checkpoint")
    assert r.status_code == 200, r.text
    return r.json()


def _verify_opening(opening: dict, leaf: str) -> dict:
    committed = json.loads(leaf)["commitment"]
    content = opening["content"].encode()
    assert hashlib.sha256(bytes.fromhex(opening["salt"]) + content).hexdigest() == committed
    return json.loads(content)


def test_answers_name_their_leaf_and_its_proof_verifies(client, world):
    a = world.a_member.headers
    r = client.post("/api/v1/plans", headers=a, json={
        "model": "lab-a/m", "title": "Logged", "stages": FOUR_STAGES[:2], "file": True})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["log_index"] is not None
    # The write's answer names the leaf of the event it recorded, and reads agree.
    index = plan["log_index"]
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["log_index"] == index
    assert client.get(f"/api/v1/log/entity/plan/{plan['id']}").json()["leaf_index"] == index
    revisions = client.get(f"/api/v1/plans/{plan['id']}/revisions").json()
    assert revisions[-1]["log_index"] == index
    cp = _checkpoint(client)
    proof = client.get("/api/v1/log/proof/inclusion",
                       params={"index": index, "tree_size": cp["tree_size"]}).json()
    entry = client.get("/api/v1/log/entries",
                       params={"start": index, "end": index + 1}).json()["entries"][0]
    assert entry["state"] == "open"
    event = _verify_opening(entry["opening"], entry["leaf"])
    assert (event["entity_type"], event["entity_id"], event["action"]) == \
        ("plan", str(plan["id"]), "filed")
    leaf_hash = merkle.leaf_hash(entry["leaf"].encode())
    assert base64.b64decode(proof["leaf_hash"]) == leaf_hash
    assert merkle.verify_inclusion(index, cp["tree_size"], leaf_hash,
                                   [base64.b64decode(h) for h in proof["hashes"]],
                                   base64.b64decode(cp["root_hash"]))
    # A draft of another lab: its leaf is public, its opening and index are not.
    r = client.post("/api/v1/plans", headers=world.b_member.headers, json={
        "model": "lab-b/m", "title": "Secret draft", "stages": FOUR_STAGES[:1]})
    draft = r.json()
    assert draft["log_index"] is not None
    assert client.get(f"/api/v1/log/entity/plan/{draft['id']}").status_code == 404
    r = client.get(f"/api/v1/log/openings/{draft['log_index']}")
    assert r.status_code == 404
    leaf = client.get("/api/v1/log/entries", params={
        "start": draft["log_index"], "end": draft["log_index"] + 1}).json()["entries"][0]
    assert leaf["state"] == "sealed" and leaf["opening"] is None
    assert "Secret" not in leaf["leaf"] and set(json.loads(leaf["leaf"])) == {
        "v", "entity_type", "at", "commitment"}
    r = client.get(f"/api/v1/log/openings/{draft['log_index']}", headers=world.b_member.headers)
    assert r.status_code == 200 and _verify_opening(r.json(), r.json()["leaf"])["action"] == "drafted"


def test_a_release_records_the_verdicts_it_was_judged_with(client, world):
    a = world.a_member.headers
    r = client.post("/api/v1/plans", headers=a, json={
        "model": "lab-a/m", "title": "Judged", "stages": FOUR_STAGES[:2], "file": True,
        "policies": ["gpt2-2019"]})
    assert r.status_code == 201, r.text
    plan = r.json()
    version = plan["version"]
    for to in ("ready", "released"):
        r = client.post(f"/api/v1/plans/{plan['id']}/stages/1/transitions", headers=a,
                        json={"to": to, "version": version})
        assert r.status_code == 200, r.text
        version = r.json()["version"]
    compliance = client.get(f"/api/v1/plans/{plan['id']}/compliance").json()
    index = compliance["log_index"]
    assert index is not None
    opening = client.get(f"/api/v1/log/openings/{index}").json()
    event = _verify_opening(opening, opening["leaf"])
    assert event["action"] in ("release_judged", "verdict_changed")
    judged = [e for e in client.get("/api/v1/events", params={
        "entity_type": "plan", "entity_id": str(plan["id"]), "limit": 200}).json()["items"]
        if e["action"] == "release_judged"]
    assert len(judged) == 1 and judged[0]["data"]["stage"] == 1
    assert {v["policy"] for v in judged[0]["data"]["verdicts"]} == {"gpt2-2019"}
    assert all(set(v) == {"policy", "rule", "action", "verdict"}
               for v in judged[0]["data"]["verdicts"])


EMBARGO = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_an_embargoed_incidents_leaf_opens_only_after_the_embargo(client, world):
    freeze(EMBARGO - timedelta(days=3))
    coord, anyone = world.coord.headers, {}
    r = client.post("/api/v1/incidents", headers=world.a_member.headers, json={
        "title": "Detector evasion kept quiet", "summary": "details", "occurred": "2029-12-01",
        "harm_types": ["disinformation"], "severity": "high", "labs": ["lab-a"]})
    assert r.status_code == 201, r.text
    inc = r.json()
    r = client.post(f"/api/v1/incidents/{inc['id']}/embargo", headers=coord, json={
        "embargo_until": EMBARGO.isoformat(), "version": inc["version"]})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/incidents/{inc['id']}/transitions", headers=coord,
                    json={"to": "triaged", "version": r.json()["version"]})
    r = client.post(f"/api/v1/incidents/{inc['id']}/transitions", headers=coord,
                    json={"to": "confirmed", "version": r.json()["version"]})
    assert r.status_code == 200, r.text
    index = r.json()["log_index"]
    assert index is not None
    leaf = client.get("/api/v1/log/entries", params={"start": index, "end": index + 1}
                      ).json()["entries"][0]
    assert leaf["state"] == "sealed" and "evasion" not in leaf["leaf"]
    for who in (anyone, world.b_member.headers):
        assert client.get(f"/api/v1/log/openings/{index}", headers=who).status_code == 404
    assert client.get(f"/api/v1/incidents/{inc['id']}").status_code == 404
    r = client.get(f"/api/v1/log/openings/{index}", headers=coord)
    assert r.status_code == 200
    assert _verify_opening(r.json(), r.json()["leaf"])["entity_id"] == str(inc["id"])

    freeze(EMBARGO + timedelta(seconds=1))
    assert client.get(f"/api/v1/incidents/{inc['id']}").status_code == 200
    r = client.get(f"/api/v1/log/openings/{index}")
    assert r.status_code == 200, r.text
    event = _verify_opening(r.json(), r.json()["leaf"])
    # What the log committed to while the incident was sealed: confirmed, days earlier.
    assert event["data"]["status"] == "confirmed"
    assert event["at"] < EMBARGO.strftime("%Y-%m-%dT%H:%M:%S")
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["log_index"] == index
    # Who reported stays hidden: the reporter's own submission does not open publicly.
    submitted = inc["log_index"]
    assert submitted is not None and submitted < index
    assert client.get(f"/api/v1/log/openings/{submitted}").status_code == 404
    r = client.get(f"/api/v1/log/openings/{submitted}", headers=world.a_member.headers)
    assert r.status_code == 200 and "a_member" in r.json()["content"]


# -- the monitor -------------------------------------------------------------------------

def _drop_append_only_triggers():
    with get_engine().begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS event_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS event_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS event_no_change ON event")


def _public_leaf_events(stagegate_url=None):
    """(leaf index, event id) of events the public may open, oldest first."""
    with session_scope(write=False) as s:
        from app.access import openable_events
        from app.auth.principal import ANONYMOUS

        return list(s.execute(select(LogLeaf.idx, LogLeaf.event_id)
                              .join(Event, Event.id == LogLeaf.event_id)
                              .where(openable_events(ANONYMOUS)).order_by(LogLeaf.idx)))


def test_the_monitor_accepts_an_honest_log_and_names_the_first_rewritten_index(
        stagegate, world, tmp_path):
    for n in range(3):
        file_public_plan(world, f"Plan {n}")
    state = tmp_path / "monitor" / "state.json"
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 0, err
    assert out.startswith("ok: stagegate.local/log at ") and "key pinned now" in out
    size = json.loads(state.read_text())["size"]
    file_public_plan(world, "Later plan")
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 0, err
    assert f"consistent with the {size} seen before" in out

    # The database owner drops the append-only triggers, rewrites one published event
    # and deletes another.
    public = _public_leaf_events()
    (first_idx, rewritten), (second_idx, deleted) = public[1], public[3]
    _drop_append_only_triggers()
    with get_engine().begin() as conn:
        action = conn.execute(text("SELECT action FROM event WHERE id = :id"),
                              {"id": rewritten}).scalar_one()
        conn.execute(text("UPDATE event SET action = 'withdrawn' WHERE id = :id"),
                     {"id": rewritten})
        conn.execute(text("DELETE FROM event WHERE id = :id"), {"id": deleted})
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 1
    assert f"FAIL: index {first_idx}: the opening does not match the commitment" in err
    # Undo the rewrite: the deletion is what is left, and it is named.
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE event SET action = :action WHERE id = :id"),
                     {"id": rewritten, "action": action})
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 1 and f"FAIL: index {second_idx}: the event this leaf commits to is gone" \
        in err

    # Rewriting the leaf itself (and its hash) is caught against the monitor's memory.
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE log_leaf SET leaf = :leaf WHERE idx = 0"),
                     {"leaf": '{"at":"2019-01-01T00:00:00.000000Z","commitment":"00",'
                              '"entity_type":"plan","v":1}'})
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 1 and "FAIL: index 0: the leaf differs from the one seen" in err


def test_a_forked_log_is_reported(stagegate, world, tmp_path):
    for n in range(3):
        file_public_plan(world, f"Plan {n}")
    state = tmp_path / "state.json"
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 0, err
    size = json.loads(state.read_text())["size"]
    # The operator (who holds the key) rebuilds the tree over a changed leaf 0 and signs
    # a second checkpoint of the same size.
    with session_scope() as s:
        leaves = list(s.execute(select(LogLeaf).order_by(LogLeaf.idx)).scalars())
        leaves[0].leaf = leaves[0].leaf.replace('"v":1', '"v":1 ')
        s.execute(LogNode.__table__.delete())
        s.execute(LogCheckpoint.__table__.delete())
        tree = merkle.MemoryTree([merkle.leaf_hash(x.leaf.encode()) for x in leaves])
        s.execute(LogNode.__table__.insert(), [
            {"level": lv, "idx": i, "hash": h}
            for lv, row in enumerate(tree.levels) for i, h in enumerate(row)])
    code, out, err = stagegate("log", "verify", "--state", state)
    assert code == 1
    assert f"FAIL: fork: two checkpoints of size {size} with different roots" in err
    with session_scope(write=False) as s:
        assert s.execute(select(func.count()).select_from(LogCheckpoint)).scalar() == 1


def test_log_commands_key_and_prove(stagegate, world, live_server, settings):
    plan = file_public_plan(world)
    code, key, err = stagegate("log", "key", "--url", live_server)
    assert code == 0 and key.startswith("stagegate.local/log+"), err
    # The operator's own copy: the key file beside the secret key, readable by them only.
    code, local, err = stagegate("log", "key")
    assert code == 0 and local == key
    assert (settings.data_dir / "log.key").stat().st_mode & 0o777 == 0o600
    code, out, err = stagegate("log", "prove", f"plan/{plan}", "--key", key.strip())
    assert code == 0, err
    assert out.splitlines()[-1].endswith("inclusion verified")
    code, out, err = stagegate("log", "prove", "plan/999999")
    assert code == 2 and "404" in err
    code, out, err = stagegate("log", "prove", "nonsense")
    assert code == 2 and "TYPE/ID" in err


def test_the_transparency_page_shows_the_checkpoint_and_leaves_as_the_reader_may(
        client, world):
    plan = file_public_plan(world)
    r = client.post("/api/v1/plans", headers=world.b_member.headers, json={
        "model": "lab-b/m", "title": "Secret draft", "stages": FOUR_STAGES[:1]})
    draft_leaf = r.json()["log_index"]
    r = client.get("/transparency", headers={"Accept": "text/html"})
    assert r.status_code == 200
    page = r.text
    assert client.get("/api/v1/log/key").text.strip() in page
    assert f'<a href="/plans/{plan}">plan {plan}</a>' in page
    row = page[page.index(f'<td class="num">{draft_leaf}</td>'):]
    row = row[:row.index("</tr>")]
    assert "sealed" in row and "Secret" not in page and "b_member" not in row
    assert client.get("/transparency?before=-1").status_code == 422
    older = client.get("/transparency?before=2", headers={"Accept": "text/html"}).text
    assert '<td class="num">1</td>' in older and f'<td class="num">{draft_leaf}</td>' \
        not in older
