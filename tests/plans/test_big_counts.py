"""Ids and counts past 32 bits: a 175B-parameter stage, a 7B model, the 2**31-th row."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import inspect, text

from app.cli import main
from app.db import get_engine, session_scope

GPT3 = 175_000_000_000
LLAMA_7B = 7_000_000_000


def test_a_175b_stage_is_filed_and_read_back_via_the_api(client, world):
    body = {"model": "lab-a/m", "title": "GPT-3 sized", "file": True,
            "stages": [{"name": "175B", "access_level": "api", "parameter_count": GPT3}]}
    r = client.post("/api/v1/plans", json=body, headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    plan = client.get(f"/api/v1/plans/{r.json()['id']}").json()
    assert plan["stages"][0]["parameter_count"] == GPT3


def test_a_175b_stage_is_filed_with_plan_file(client, world, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("model: lab-a/m\ntitle: From a file\nstages:\n"
                    f"  - name: 175B\n    access_level: api\n    parameter_count: {GPT3}\n")
    result = CliRunner().invoke(main, ["plan", "file", str(path), "--user", "a_member"])
    assert result.exit_code == 0, result.output
    assert "filed: From a file" in result.output
    plans = client.get("/api/v1/plans").json()["items"]
    assert plans[0]["stages"][0]["parameter_count"] == GPT3


def test_a_7b_model_card(client, world):
    r = client.post("/api/v1/models", json={"lab": "lab-a", "slug": "big", "name": "Big",
                                            "parameter_count": LLAMA_7B},
                    headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    model = client.get(f"/api/v1/models/{r.json()['id']}").json()
    assert model["parameter_count"] == LLAMA_7B


def test_a_count_past_64_bits_is_a_named_422_and_stores_nothing(client, world):
    body = {"model": "lab-a/m", "title": "Too big",
            "stages": [{"name": "x", "access_level": "api", "parameter_count": 2**63}]}
    r = client.post("/api/v1/plans", json=body, headers=world.a_member.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "stages.0.parameter_count"
    assert client.get("/api/v1/plans", headers=world.a_member.headers).json()["items"] == []


def test_ids_keep_counting_past_2_31(client, world, backend):
    """Every table's id sequence pushed past 32 bits; the usual flows still work."""
    insp = inspect(get_engine())
    with session_scope() as s:
        conn = s.connection()
        for table in insp.get_table_names():
            has_id = any(c["name"] == "id" for c in insp.get_columns(table))
            if backend == "postgresql" and has_id:
                seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                   {"t": f'"{table}"'}).scalar()
                if seq:
                    conn.execute(text("SELECT setval(:s, 3000000000)"), {"s": seq})
            elif table == "event":
                # SQLite picks max(rowid) + 1: one high row moves the counter.
                conn.execute(text("INSERT INTO event (id, at, actor, entity_type, entity_id, "
                                  "action, digest, visibility, data) VALUES (3000000000, "
                                  "'2020-01-01 00:00:00', 'x', 'x', 'x', 'x', 'x', 'lab', "
                                  "'{}')"))
    body = {"model": "lab-a/m", "title": "After", "file": True,
            "stages": [{"name": "175B", "access_level": "api", "parameter_count": GPT3}]}
    r = client.post("/api/v1/plans", json=body, headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    plan_id = r.json()["id"]
    if backend == "postgresql":
        assert plan_id > 2**31
    assert client.get(f"/api/v1/plans/{plan_id}").json()["stages"][0]["parameter_count"] == GPT3
    events = client.get(f"/api/v1/events?entity_type=plan&entity_id={plan_id}",
                        headers=world.a_member.headers).json()["items"]
    assert events and all(e["id"] > 2**31 for e in events)


def test_postgresql_ids_and_counts_are_bigint(settings, backend):
    """The migration and the table classes agree (test_db); this pins what they agree on."""
    if backend != "postgresql":
        return
    insp = inspect(get_engine())
    narrow = []
    for table in insp.get_table_names():
        fks = {c for fk in insp.get_foreign_keys(table) for c in fk["constrained_columns"]}
        for col in insp.get_columns(table):
            wide_needed = (col["name"] == "id" or col["name"] in fks
                           or col["name"] in ("parameter_count", "tokens_processed",
                                              "total_bytes", "run_id", "checkpoint_id"))
            if wide_needed and str(col["type"]) != "BIGINT":
                narrow.append(f"{table}.{col['name']}: {col['type']}")
    assert narrow == []
