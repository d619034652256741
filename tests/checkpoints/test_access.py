"""Access levels: who sees, lists and downloads public, partners and internal checkpoints."""

from __future__ import annotations

import pytest

from tests.agreements.conftest import people  # noqa: F401  (lab-c, lab-d fixtures)
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2, upload


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def ckpts(client, world, files):
    ids = {}
    for level in ("public", "partners", "internal"):
        resp = upload(client, world.a_member, files, name=level, access=level)
        assert resp.status_code == 201, resp.text
        ids[level] = resp.json()["id"]
    return ids


# who -> the access levels of lab A's checkpoints they may see
SEES = {"anonymous": {"public"}, "a_member": {"public", "partners", "internal"},
        "b_member": {"public"}, "coord": {"public", "partners", "internal"}}


@pytest.mark.parametrize("who", list(SEES))
def test_listing_download_and_runs_follow_access_level(client, world, ckpts, who):
    headers = {} if who == "anonymous" else getattr(world, who).headers
    listed = client.get("/api/v1/checkpoints?model=lab-a/m", headers=headers).json()["items"]
    assert {c["access_level"] for c in listed} == SEES[who]
    for level, cid in ckpts.items():
        visible = level in SEES[who]
        assert client.get(f"/api/v1/checkpoints/{cid}", headers=headers).status_code == (
            200 if visible else 404)
        # Another lab's non-public checkpoint is a 404, not a 403: its existence is private.
        download = client.get(f"/api/v1/checkpoints/{cid}/files/config.json", headers=headers)
        assert download.status_code == (200 if visible else 404)
    runs = client.get("/api/v1/evals/runs?limit=200", headers=headers).json()["items"]
    assert {r["checkpoint_id"] for r in runs} == {ckpts[lvl] for lvl in SEES[who]}


def test_lab_members_change_access_as_they_upload(client, world, ckpts):
    url = f"/api/v1/checkpoints/{ckpts['internal']}"
    # One rule for upload and change: a member who may upload as public may also narrow
    # it again; members of other labs may not.
    resp = client.patch(url, json={"access_level": "partners"}, headers=world.a_member.headers)
    assert resp.status_code == 200 and resp.json()["access_level"] == "partners"
    assert client.patch(url, json={"access_level": "public"},
                        headers=world.b_member.headers).status_code == 404
    resp = client.patch(url, json={"access_level": "public"}, headers=world.a_admin.headers)
    assert resp.status_code == 200 and resp.json()["access_level"] == "public"
    assert client.get(url).status_code == 200


def test_private_model_hides_even_public_checkpoints(client, world, ckpts):
    model = client.get(f"/api/v1/models/{world.model_a}", headers=world.a_admin.headers).json()
    resp = client.patch(f"/api/v1/models/{world.model_a}",
                        json={"public": False, "version": model["version"]},
                        headers=world.a_admin.headers)
    assert resp.status_code == 200, resp.text
    assert client.get(f"/api/v1/checkpoints/{ckpts['public']}").status_code == 404
    assert client.get("/api/v1/checkpoints").json()["items"] == []


def test_partners_see_partner_checkpoints_under_an_active_agreement(client, people, ckpts):  # noqa: F811
    from tests.agreements.conftest import active

    c = people.c_member.headers
    assert client.get(f"/api/v1/checkpoints/{ckpts['partners']}", headers=c).status_code == 404
    active(client, people, parties=["lab-c"],
           scope={"checkpoints": [ckpts["partners"], ckpts["internal"]]})
    assert client.get(f"/api/v1/checkpoints/{ckpts['partners']}/files/config.json",
                      headers=c).status_code == 200
    # An agreement cannot open an internal checkpoint: internal means the lab only.
    assert client.get(f"/api/v1/checkpoints/{ckpts['internal']}", headers=c).status_code == 404
    listed = client.get("/api/v1/checkpoints", headers=c).json()["items"]
    assert {x["access_level"] for x in listed} == {"public", "partners"}
