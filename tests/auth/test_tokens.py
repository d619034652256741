from datetime import timedelta

from sqlmodel import select

from app.auth.tables import ApiToken
from app.db import session_scope
from app.timeutil import freeze, utcnow


def test_token_is_shown_once_and_stored_only_as_hash(client, world):
    r = client.post("/api/v1/tokens", json={"label": "ci"}, headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    secret, prefix = r.json()["token"], r.json()["prefix"]
    assert secret.startswith(f"sg_{prefix}_")
    with session_scope(write=False) as s:
        row = s.exec(select(ApiToken).where(ApiToken.prefix == prefix)).one()
        assert secret not in row.token_hash and len(row.token_hash) == 64
    listed = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).json()
    assert prefix in [t["prefix"] for t in listed]
    assert all("token" not in t for t in listed)


def test_revocation_takes_effect_on_the_next_request(client, world):
    secret = client.post("/api/v1/tokens", json={}, headers=world.a_member.headers).json()["token"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    prefix = secret.split("_")[1]
    assert client.delete(f"/api/v1/tokens/{prefix}", headers=headers).status_code == 200
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_expired_token_is_refused(client, world):
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    secret = client.post("/api/v1/tokens", json={"expires_at": expires},
                         headers=world.a_member.headers).json()["token"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    freeze(utcnow() + timedelta(hours=1, seconds=1))
    assert client.get("/api/v1/me", headers=headers).json()["detail"] == "token expired"


def test_bad_tokens_answer_401_with_a_reason(client, world):
    for header in ["Bearer sg_nope_nope", "Basic abc", "Bearer " + world.a_member.token + "x"]:
        r = client.get("/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")


def test_cannot_revoke_someone_elses_token(client, world):
    other = world.b_member.token.split("_")[1]
    assert client.delete(f"/api/v1/tokens/{other}", headers=world.a_member.headers).status_code == 404
    assert client.get("/api/v1/me", headers=world.b_member.headers).status_code == 200


def test_me_names_roles(client, world):
    me = client.get("/api/v1/me", headers=world.a_admin.headers).json()
    assert me == {"name": "a_admin", "display_name": None, "is_coordinator": False,
                  "labs": {"lab-a": "lab_admin"}}
