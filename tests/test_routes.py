"""Deny by default: every route not explicitly public refuses anonymous callers."""

import re

import pytest

from app import create_app

SAMPLE = {"int": "1", "str": "x", "path": "x"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+:(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), path)


def _routes():
    app = create_app()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                yield method, route.path, bool(handler.opt.get("public"))


ROUTES = sorted(set(_routes()))


# Writes open to anonymous callers, each on purpose; anything else is a mistake.
PUBLIC_WRITES = {("POST", "/api/v1/incidents"),
                 ("POST", "/incidents/report"),  # the same submission as a web form
                 ("POST", "/console/login")}  # signing in (CSRF-checked, throttled)


def test_write_routes_are_public_only_by_decision():
    public_writes = {(m, p) for m, p, public in ROUTES if public and m != "GET"}
    assert public_writes <= PUBLIC_WRITES


CLOSED = [(m, p) for m, p, public in ROUTES if not public and not p.startswith("/schema")]


def test_most_routes_are_closed():
    assert len(CLOSED) >= 25  # a guard against the walk silently finding nothing


@pytest.mark.parametrize("method,path", CLOSED, ids=[f"{m} {p}" for m, p in CLOSED])
def test_anonymous_gets_401_on_every_non_public_route(client, method, path):
    r = client.request(method, _concrete(path), json={})
    assert r.status_code == 401, (method, path, r.status_code, r.text)
    assert r.json()["status"] == 401
