"""Issue 17's defects as regressions (SQLite and PostgreSQL): a stage-scoped agreement
grants what the gate counts, and a derived result never names a hidden checkpoint."""

from __future__ import annotations

import pytest

from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.evals.service import TRANSFER_SUITE, store_result
from app.evals.tables import EvalResult
from app.models.tables import AIModel
from tests.agreements.conftest import active, people  # noqa: F401 - fixture
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2
from tests.norms.test_compliance import compliance, file, rule

PLANS = "/api/v1/plans"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


def upload(client, actor, files, name, access, stage=None):
    data = {"model": "lab-a/m", "name": name, "access_level": access}
    if stage:
        data.update(plan=str(stage[0]), stage=str(stage[1]))
    return client.post("/api/v1/checkpoints", headers=actor.headers, data=data,
                       files=[("files", (n, c, "application/octet-stream"))
                              for n, c in files.items()])


def test_a_stage_scoped_agreement_grants_what_the_gate_counts(client, people, files):  # noqa: F811
    plan = file(client, people, ["gpt2-2019"], [
        {"name": "small", "access_level": "public_weights"},
        {"name": "medium", "access_level": "public_weights"},
        {"name": "large", "access_level": "public_weights", "checkpoint_ref": "large"},
        {"name": "xl", "access_level": "public_weights"}])
    pid = plan["id"]
    # Attached at upload (stage 4) and afterwards (stage 3, named by its checkpoint_ref).
    xl = upload(client, people.a_member, files, "xl", "partners", stage=(pid, 4))
    assert xl.status_code == 201, xl.text
    xl = xl.json()
    assert xl["stage"] == {"plan": pid, "stage": 4, "name": "xl"}
    large = upload(client, people.a_member, files, "large", "partners").json()
    r = client.put(f"/api/v1/checkpoints/{large['id']}/stage", json={"plan": pid, "stage": 3},
                   headers=people.a_member.headers)
    assert r.status_code == 200 and r.json()["stage"]["stage"] == 3, r.text
    # Before any agreement: partners get 404, exactly like a missing checkpoint.
    file_url = f"/api/v1/checkpoints/{xl['id']}/files/config.json"
    assert client.get(file_url, headers=people.c_member.headers).status_code == 404
    active(client, people, scope={"stages": [{"plan": pid, "position": 3},
                                             {"plan": pid, "position": 4}]})
    for ckpt in (xl, large):
        r = client.get(f"/api/v1/checkpoints/{ckpt['id']}/files/config.json",
                       headers=people.c_member.headers)
        assert r.status_code == 200, r.text
    # An outsider still gets 404; the stage's checkpoints resolve for those who may see.
    assert client.get(file_url, headers=people.b_member.headers).status_code == 404
    listed = client.get(f"/api/v1/checkpoints/stage/{pid}/3", headers=people.c_member.headers)
    assert [c["name"] for c in listed.json()] == ["large"]
    assert client.get(f"/api/v1/checkpoints/stage/{pid}/3").json() == []
    # The gate counts exactly the partners who can download: both parties, from today.
    got = rule(compliance(client, pid, people.a_member.headers), 4,
               "partner-analysis-before-final")
    assert got["verdict"] in ("pending", "fail") and got["measured"] == 0, got
    assert sorted(got["evidence"][0]["partners"]) == ["lab-c", "lab-d"]
    # Internal: the agreement opens nothing, and the gate stops counting the partners.
    r = client.patch(f"/api/v1/checkpoints/{xl['id']}", json={"access_level": "internal"},
                     headers=people.a_member.headers)
    assert r.status_code == 200
    assert client.get(file_url, headers=people.c_member.headers).status_code == 404
    got = rule(compliance(client, pid, people.a_member.headers), 4,
               "partner-analysis-before-final")
    assert got["verdict"] == "fail" and "lets 0 partner(s)" in got["detail"], got


def test_attaching_names_a_stage_of_the_same_model_only(client, people, files):  # noqa: F811
    plan = file(client, people, [], [{"name": "one", "access_level": "public_weights"}])
    ckpt = upload(client, people.a_member, files, "one", "internal").json()
    for body, field in (({"plan": plan["id"], "stage": 2}, "stage"),
                        ({"plan": 10**12, "stage": 1}, "stage"),
                        ({"plan": plan["id"]}, "stage")):
        r = client.put(f"/api/v1/checkpoints/{ckpt['id']}/stage", json=body,
                       headers=people.a_member.headers)
        assert r.status_code in (400, 422), r.text
    # Another lab's member cannot attach (the checkpoint is hidden from them: 404).
    r = client.put(f"/api/v1/checkpoints/{ckpt['id']}/stage",
                   json={"plan": plan["id"], "stage": 1}, headers=people.b_member.headers)
    assert r.status_code == 404
    r = client.request("DELETE", f"/api/v1/checkpoints/{ckpt['id']}/stage",
                       headers=people.a_member.headers)
    assert r.status_code == 200 and r.json()["stage"] is None


def test_a_derived_result_is_shown_only_where_every_checkpoint_it_names_is(client, world):
    """355M public, 774M partners-only: the transfer matrix names both."""
    with session_scope() as s:
        lab_a = s.get(AIModel, world.model_a).lab_id
        rows = [Checkpoint(model_id=world.model_a, lab_id=lab_a, name=name,
                           access_level=level, manifest=[], manifest_digest=digest * 64,
                           total_bytes=1, parameter_count=1)
                for name, level, digest in (("355M", "public", "a"), ("774M", "partners", "b"))]
        s.add_all(rows)
        s.flush()
        public, withheld = rows
        result = store_result(s, EvalResult(
            result_key="k" * 64, source="measured", model_id=world.model_a,
            checkpoint_id=public.id, suite_id=TRANSFER_SUITE, suite_version=1,
            config_digest="0" * 64, metrics={"mean_transfer_accuracy": 0.7},
            details={"labels": ["355M", "774M"], "matrix": [[0.9, 0.6], [0.7, 0.8]],
                     "checkpoints": {"355M": "a" * 64, "774M": "b" * 64}}),
            named=[withheld.id])
        ids = (result.id, public.id)
    url = f"/api/v1/evals/results/{ids[0]}"
    for headers in ({}, world.b_member.headers):
        assert client.get(url, headers=headers).status_code == 404
        listed = client.get("/api/v1/evals/results", headers=headers).json()["items"]
        assert ids[0] not in [r["id"] for r in listed]
        assert "b" * 64 not in client.get(f"/api/v1/checkpoints/{ids[1]}",
                                          headers=headers).text
    assert client.get(url, headers=world.a_member.headers).status_code == 200
    assert client.get(url, headers=world.coord.headers).status_code == 200
