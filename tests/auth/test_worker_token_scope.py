"""A worker token (a remote evaluation worker's) reaches its own routes and nothing else:
every other operation of the API, and the web pages, answer 403, whatever they are."""

from __future__ import annotations

import re

import pytest

from app.auth.principal import SYSTEM
from app.auth.service import authenticate, create_token, get_user
from app.db import session_scope
from app.errors import Invalid


@pytest.fixture
def worker_headers(world, settings) -> dict:
    with session_scope() as s:
        _, secret = create_token(s, SYSTEM, get_user(s, "coord"), worker="gpu-1")
    return {"Authorization": f"Bearer {secret}"}


def test_every_other_route_refuses_a_worker_token(client, worker_headers):
    doc = client.get("/schema/openapi.json").json()
    tried = 0
    for path, item in doc["paths"].items():
        if path.startswith("/api/v1/worker/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            answer = client.request(method.upper(), concrete, headers=worker_headers,
                                    json={} if method in ("post", "put", "patch") else None)
            assert answer.status_code == 403, (method, path, answer.status_code)
            tried += 1
    assert tried >= 40
    for page in ("/", "/models", "/incidents", "/console"):
        assert client.get(page, headers=worker_headers).status_code == 403, page


def test_a_worker_token_is_nobody_to_the_services(world, settings, worker_headers):
    with session_scope(write=False) as s:
        principal = authenticate(s, worker_headers["Authorization"])
    assert principal.is_worker and principal.worker.startswith("gpu-1/")
    # No user, no labs, no coordinator: any rule reads it as anonymous.
    assert principal.is_anonymous and principal.roles == {} and not principal.is_coordinator


def test_worker_names_and_owners_are_checked(world, settings):
    with session_scope() as s:
        with pytest.raises(Invalid, match="coordinator"):
            create_token(s, SYSTEM, get_user(s, "a_admin"), worker="gpu-1")
        with pytest.raises(Invalid, match="worker name"):
            create_token(s, SYSTEM, get_user(s, "coord"), worker="gpu 1/../x")
