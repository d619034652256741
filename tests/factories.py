"""Builders for test data, through the same services the API uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth.principal import SYSTEM, Principal
from app.auth.service import create_token, create_user, principal_for_user
from app.db import session_scope
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model
from app.plans.schemas import PlanCreate
from app.plans.service import file_plan


def stage(name: str, access: str = "public_weights", **extra) -> dict:
    return {"name": name, "access_level": access, **extra}


FOUR_STAGES = [
    stage("124M", "public_weights", parameter_count=124_000_000,
          planned_date="2019-02-14", artifacts=["weights", "code", "paper"]),
    stage("355M", "public_weights", parameter_count=355_000_000, planned_date="2019-05-03"),
    stage("774M", "partners", parameter_count=774_000_000, planned_date="2019-08-20"),
    stage("1.5B", "public_weights", parameter_count=1_558_000_000, planned_date="2019-11-05",
          artifacts=["weights", "model_card", "detector"]),
]


@dataclass
class Actor:
    name: str
    token: str
    principal: Principal

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """Two labs (a, b), a member and an admin of a, a member of b, and a coordinator."""
    actors: dict[str, Actor] = field(default_factory=dict)
    model_a: int = 0
    model_b: int = 0

    def __getattr__(self, name: str) -> Actor:
        try:
            return self.actors[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def build(cls) -> World:
        world = cls()
        with session_scope() as s:
            create_lab(s, SYSTEM, "lab-a", "Lab A")
            create_lab(s, SYSTEM, "lab-b", "Lab B")
            people = [("a_admin", "lab-a", "lab_admin", False),
                      ("a_member", "lab-a", "lab_member", False),
                      ("b_member", "lab-b", "lab_member", False),
                      ("coord", None, None, True)]
            for name, lab, role, coordinator in people:
                user = create_user(s, SYSTEM, name, lab_slug=lab, role=role,
                                   coordinator=coordinator)
                _, secret = create_token(s, SYSTEM, user)
                world.actors[name] = Actor(name, secret, principal_for_user(s, user))
            world.model_a = create_model(s, SYSTEM, ModelCreate(
                lab="lab-a", slug="m", name="Model A")).id
            world.model_b = create_model(s, SYSTEM, ModelCreate(
                lab="lab-b", slug="m", name="Model B")).id
        return world

    def plan(self, *, filed: bool, lab: str = "lab-a", title: str = "Staged release") -> int:
        actor = self.a_member if lab == "lab-a" else self.b_member
        with session_scope() as s:
            return file_plan(s, actor.principal, PlanCreate(
                model=f"{lab}/m", title=title, stages=FOUR_STAGES, file=filed)).id
