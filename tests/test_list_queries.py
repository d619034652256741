"""Lists read each relation once per page, not once per row (issue 10: no N+1)."""

from __future__ import annotations

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model
from tests.queries import count_queries


def _queries(client, world, path) -> int:
    # Signed in, so the read cache (anonymous only) cannot hide the work.
    with count_queries() as seen:
        r = client.get(path, headers=world.coord.headers)
        assert r.status_code == 200, r.text
    return len(seen)


def test_a_page_of_plans_or_models_costs_the_same_queries_whatever_its_length(client, world):
    world.plan(filed=True)
    one_plan = _queries(client, world, "/api/v1/plans")
    one_model = _queries(client, world, "/api/v1/models")
    with session_scope() as s:
        for i in range(6):  # more labs and models, each with a plan
            create_lab(s, SYSTEM, f"lab-{i}x", f"Lab {i}")
            create_model(s, SYSTEM, ModelCreate(lab=f"lab-{i}x", slug="m", name=f"M {i}"))
    for _ in range(6):
        world.plan(filed=True, lab="lab-b")
    plans = client.get("/api/v1/plans", headers=world.coord.headers).json()["items"]
    models = client.get("/api/v1/models", headers=world.coord.headers).json()["items"]
    assert len(plans) == 7 and len(models) == 8
    assert _queries(client, world, "/api/v1/plans") == one_plan
    assert _queries(client, world, "/api/v1/models") == one_model
