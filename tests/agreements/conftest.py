"""Agreement fixtures: two more labs (c, d) whose admins sign, and request helpers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.auth.principal import SYSTEM
from app.auth.service import create_token, create_user, principal_for_user
from app.db import session_scope
from app.labs.service import create_lab
from app.timeutil import utcnow
from tests.factories import Actor

API = "/api/v1/agreements"
TERMS = "Use the weights for **research** only.\n\n<script>alert(1)</script>"


@pytest.fixture
def people(world):
    """world plus lab-c (c_admin, c_member) and lab-d (d_admin), the usual parties."""
    with session_scope() as s:
        create_lab(s, SYSTEM, "lab-c", "Lab C")
        create_lab(s, SYSTEM, "lab-d", "Lab D")
        for name, lab, role in [("c_admin", "lab-c", "lab_admin"),
                                ("c_member", "lab-c", "lab_member"),
                                ("d_admin", "lab-d", "lab_admin")]:
            user = create_user(s, SYSTEM, name, lab_slug=lab, role=role)
            _, secret = create_token(s, SYSTEM, user)
            world.actors[name] = Actor(name, secret, principal_for_user(s, user))
    return world


def body(**over) -> dict:
    now = utcnow()
    data = {"discloser": "lab-a", "title": "Pre-release access", "kind": "research_access",
            "parties": ["lab-c", "lab-d"], "scope": {"models": ["lab-a/m"]},
            "terms": TERMS, "non_commercial": True,
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat()}
    data.update(over)
    return data


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def draft(client, people, **over) -> dict:
    return ok(client.post(API + "/", json=body(**over), headers=people.a_member.headers), 201)


def propose(client, people, agreement: dict) -> dict:
    return ok(client.post(f"{API}/{agreement['id']}/transitions",
                          json={"to": "proposed", "version": agreement["version"]},
                          headers=people.a_member.headers))


def sign(client, actor, agreement_id: int, lab: str, status: int = 201) -> dict:
    return ok(client.post(f"{API}/{agreement_id}/signatures", json={"lab": lab},
                          headers=actor.headers), status)


def active(client, people, **over) -> dict:
    agreement = propose(client, people, draft(client, people, **over))
    admins = {"lab-c": people.c_admin, "lab-d": people.d_admin}
    for lab in over.get("parties", ["lab-c", "lab-d"]):
        agreement = sign(client, admins[lab], agreement["id"], lab)
    return agreement


def real_checkpoints(model_id: int, lab: str, *ids: int) -> None:
    """Checkpoint rows with chosen ids (no files): agreement scopes may name only
    existing checkpoints of the disclosing lab."""
    from app.checkpoints.tables import Checkpoint
    from app.labs.service import get_lab

    with session_scope() as s:
        lab_id = get_lab(s, lab).id
        for i in ids:
            s.add(Checkpoint(id=i, model_id=model_id, lab_id=lab_id, name=f"c{i}",
                             manifest=[], manifest_digest="0" * 64, total_bytes=0,
                             parameter_count=0))
