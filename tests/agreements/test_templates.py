"""Agreements from template files: API, service, CLI, and the GPT-2 demo agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from app.access import may_download
from app.agreements.demo import load_demo_agreement
from app.agreements.schemas import ScopeIn
from app.agreements.service import instantiate_template, read_agreement
from app.agreements.tables import DisclosureAgreement
from app.auth.principal import SYSTEM, Principal
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.labs.service import get_lab
from app.models.service import find_model
from app.plans.tables import Stage
from app.timeutil import freeze
from tests.agreements.conftest import API, ok

TEMPLATE = {"template": "non_commercial_access_2019", "discloser": "lab-a",
            "parties": ["lab-c", "lab-d"], "scope": {"models": ["lab-a/m"]},
            "starts_at": "2026-01-10T00:00:00Z"}


def test_from_template_api(client, people):
    a = ok(client.post(API + "/from-template", json=TEMPLATE,
                       headers=people.a_member.headers), 201)
    assert a["status"] == "draft" and a["template"] == "non_commercial_access_2019"
    assert a["kind"] == "research_access" and a["non_commercial"] is True
    assert a["title"] == "Non-commercial research access to Lab A models"
    assert "**Recipients:** Lab C, Lab D" in a["terms"] and "{" not in a["terms"]
    assert "2026-01-10 to 2026-05-10" in a["terms"]          # the 120-day default term
    assert a["ends_at"].startswith("2026-05-10")
    assert "<h2>" in a["terms_html"]
    # An explicit end and title win over the template's defaults.
    b = ok(client.post(API + "/from-template", json=TEMPLATE | {
        "ends_at": "2026-02-01T00:00:00Z", "title": "Short access"},
        headers=people.a_member.headers), 201)
    assert b["ends_at"].startswith("2026-02-01") and b["title"] == "Short access"


def test_from_template_errors(client, people):
    h = people.a_member.headers
    r = client.post(API + "/from-template", json=TEMPLATE | {"template": "nope"}, headers=h)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "template"
    assert "non_commercial_access_2019" in r.json()["detail"]
    r = client.post(API + "/from-template", json=TEMPLATE | {"template": "../x"}, headers=h)
    assert r.status_code == 422
    r = client.post(API + "/from-template", json=TEMPLATE, headers=people.b_member.headers)
    assert r.status_code == 403
    assert client.post(API + "/from-template", json=TEMPLATE).status_code == 401


def test_template_from_a_path(people, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("title: 'Evaluation of {models}'\nkind: pre_release_evaluation\n"
                    "terms: 'From {starts}; keep {braces} as written.'\nduration_days: 10\n")
    with session_scope() as s:
        a = instantiate_template(s, SYSTEM, path, "lab-a", ["lab-c"],
                                 ScopeIn(models=["lab-a/m"]),
                                 datetime(2026, 3, 1, tzinfo=UTC))
        read = read_agreement(s, SYSTEM, a)
    assert read.title == "Evaluation of lab-a/m" and read.template == "mine"
    assert read.terms == "From 2026-03-01; keep {braces} as written."
    assert read.ends_at == datetime(2026, 3, 11, tzinfo=UTC)


def test_demo_agreement(client, settings):
    from app.demo import _ensure_gpt2_plan, _ensure_labs

    with session_scope() as s:
        _ensure_labs(s)
        _ensure_gpt2_plan(s)
        first = load_demo_agreement(s).id
    with session_scope() as s:
        assert load_demo_agreement(s).id == first
        assert len(s.exec(select(DisclosureAgreement)).all()) == 1
        cornell = Principal(user_id=10_000, name="c", roles={get_lab(s, "cornell").id:
                                                               "lab_member"})
        openai = get_lab(s, "openai").id
        gpt2 = find_model(s, SYSTEM, "openai/gpt-2").id
        stages = {st.name: st for st in s.exec(select(Stage))}
    got = ok(client.get(f"{API}/{first}"))       # public since the 1.5B release
    assert got["status"] == "expired" and got["discloser"] == "openai"
    assert got["non_commercial"] and got["kind"] == "research_access"
    assert [p["lab"] for p in got["parties"]] == ["cornell", "ctec-middlebury", "uoregon",
                                                  "ut-austin"]
    assert all(p["signed"] for p in got["parties"])
    assert [s["name"] for s in got["scope"]["stages"]] == ["774M", "1.5B"]
    assert got["starts_at"].startswith("2019-08-20")
    assert got["confidential_until"].startswith("2019-11-05")
    # Stand-ins for the hosted 1.5B and 355M, attached to their stages, uploaded before
    # partners got access (real rows: the grant reads the checkpoint table).
    with session_scope() as s:
        rows = [Checkpoint(model_id=gpt2, lab_id=openai, name=name, access_level="partners",
                           stage_id=stages[name].id, manifest=[], manifest_digest="0" * 64,
                           total_bytes=0, parameter_count=0,
                           created_at=datetime(2019, 8, 1, tzinfo=UTC))
                for name in ("1.5B", "355M")]
        s.add_all(rows)
        s.flush()
        xl, medium = (r.id for r in rows)
    freeze(datetime(2019, 10, 1, tzinfo=UTC))
    assert client.get(f"{API}/{first}").status_code == 404    # still confidential
    with session_scope(write=False) as s:
        assert may_download(s, cornell, xl)
        assert not may_download(s, cornell, medium)
    freeze(datetime(2019, 11, 30, tzinfo=UTC) + timedelta(seconds=1))
    with session_scope(write=False) as s:
        assert not may_download(s, cornell, xl)
