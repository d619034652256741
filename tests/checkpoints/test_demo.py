"""The demo loader hosts the model family once, however often it runs."""

from __future__ import annotations

from app.auth.principal import SYSTEM
from app.checkpoints.demo import load_demo_family
from app.db import session_scope
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model
from tests.checkpoints.tiny import tiny_gpt2


def test_demo_family_is_hosted_once(settings, client, tmp_path):
    with session_scope() as s:
        create_lab(s, SYSTEM, "openai", "OpenAI")
        create_model(s, SYSTEM, ModelCreate(lab="openai", slug="gpt-2", name="GPT-2"))
    dirs = {"small": tiny_gpt2(tmp_path, 0), "large": tiny_gpt2(tmp_path, 1)}
    first = list(load_demo_family(dirs=dirs))
    assert all("evaluations queued" in line for line in first)
    again = list(load_demo_family(dirs=dirs))
    assert all("already hosted" in line for line in again)
    listed = client.get("/api/v1/checkpoints?model=openai/gpt-2").json()["items"]
    assert sorted(c["name"] for c in listed) == ["large", "small"]
    assert all(c["access_level"] == "public" for c in listed)
