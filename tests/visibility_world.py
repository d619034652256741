"""Builders for visibility tests: objects made through the services, and the outsiders'
view of every GET route (walked from the app's own route table)."""

from __future__ import annotations

import io
import json
import re
import struct
from datetime import UTC, date, datetime, timedelta

from app.agreements.schemas import AgreementCreate
from app.agreements.service import create_agreement, sign_agreement, transition_agreement
from app.auth.principal import SYSTEM, Principal
from app.auth.service import create_token, create_user, principal_for_user
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.service import upload_checkpoint
from app.db import session_scope
from app.evals.reported import import_reported
from app.evals.schemas import ReportedImport
from app.incidents.schemas import IncidentCreate, ReportCreate
from app.incidents.service import set_embargo, submit_incident, transition_incident
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model, get_model, update_model
from app.plans.schemas import PlanCreate, PlanUpdate
from app.plans.service import file_plan, revise_plan, transition_plan, transition_stage
from app.timeutil import utcnow
from tests.factories import FOUR_STAGES, Actor


def safetensors_bytes(n: int = 4) -> bytes:
    """A valid one-tensor safetensors file, written by hand (no torch needed)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [n],
                               "data_offsets": [0, 4 * n]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * (4 * n)


CHECKPOINT_FILES = {
    "config.json": json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                               "n_layer": 1}).encode(),
    "model.safetensors": safetensors_bytes(),
}
LM_EVAL = {"results": {"lambada": {"acc,none": 0.5, "acc_stderr,none": 0.01}},
           "versions": {"lambada": 1}}


def add_user(s, name: str, lab: str | None, role: str | None = "lab_member",
             coordinator: bool = False) -> Actor:
    user = create_user(s, SYSTEM, name, lab_slug=lab, role=role if lab else None,
                       coordinator=coordinator)
    _, secret = create_token(s, SYSTEM, user)
    return Actor(name, secret, principal_for_user(s, user))


class Builder:
    """Makes objects through the services as the right people; remembers ids."""

    def __init__(self, labs: list[str], policies: list[str] | None = None) -> None:
        # Policies every plan declares: its verdicts read evaluations, agreements and
        # incidents, so hidden ones of those would show through a verdict if they could.
        self.policies = policies or []
        self.members: dict[str, Actor] = {}
        self.admins: dict[str, Actor] = {}
        with session_scope() as s:
            for slug in [*labs, "lab-x"]:
                create_lab(s, SYSTEM, slug, f"Lab {slug}")
                self.admins[slug] = add_user(s, f"{slug}-admin", slug, "lab_admin")
                self.members[slug] = add_user(s, f"{slug}-member", slug)
            self.coord = add_user(s, "coord", None, coordinator=True)
        self.labs = labs
        # Outsiders: anonymous, and a member of a lab that owns nothing.
        self.outsiders = {"anonymous": {}, "x_member": self.members["lab-x"].headers}

    def member(self, lab: str) -> Principal:
        return self.members[lab].principal

    def model(self, lab: str, slug: str, public: bool = True) -> int:
        with session_scope() as s:
            return create_model(s, self.member(lab), ModelCreate(
                lab=lab, slug=slug, name=slug.title(), public=public)).id

    def make_private(self, lab: str, model_id: int) -> None:
        with session_scope() as s:
            model = get_model(s, self.member(lab), model_id)
            update_model(s, self.member(lab), model_id, model.version, public=False)

    def plan(self, lab: str, model: str, lifecycle: str) -> int:
        """lifecycle: draft, withdrawn_draft, filed, withdrawn_filed, active, revised_draft."""
        who = self.member(lab)
        filed = lifecycle in ("filed", "withdrawn_filed", "active")
        with session_scope() as s:
            plan = file_plan(s, who, PlanCreate(model=f"{lab}/{model}", title=f"{lifecycle} plan",
                                                summary="Confidential *until filed*.",
                                                stages=FOUR_STAGES, file=filed,
                                                policies=self.policies))
            plan_id, version = plan.id, plan.version
        with session_scope() as s:
            if lifecycle == "revised_draft":
                revise_plan(s, who, plan_id, PlanUpdate(version=version, title="Secret title"))
            elif lifecycle in ("withdrawn_draft", "withdrawn_filed"):
                transition_plan(s, who, plan_id, "withdrawn", version, "changed our mind")
            elif lifecycle == "active":
                for to in ("ready", "released"):
                    version = transition_stage(s, who, plan_id, 1, to, version).version
        return plan_id

    def checkpoint(self, lab: str, model: str, name: str, access: str) -> int:
        with session_scope() as s:
            return upload_checkpoint(s, self.member(lab), CheckpointCreate(
                model=f"{lab}/{model}", name=name, access_level=access),
                [(n, io.BytesIO(b)) for n, b in CHECKPOINT_FILES.items()]).id

    def reported(self, lab: str, model_id: int, checkpoint_id: int | None) -> None:
        with session_scope() as s:
            import_reported(s, self.member(lab), model_id, ReportedImport(
                format="lm-eval-harness", content=LM_EVAL, checkpoint_id=checkpoint_id))

    def incident(self, lab: str, model: str | None, fate: str) -> int:
        """fate: public, embargoed, submitted, rejected."""
        with session_scope() as s:
            incident = submit_incident(s, self.member(lab), IncidentCreate(
                title=f"{fate} incident", summary="Details under *embargo*.",
                occurred=date(2024, 5, 1), harm_types=["disinformation"], severity="high",
                labs=[lab], models=[f"{lab}/{model}"] if model else [],
                reports=[ReportCreate(text=f"evidence for {fate}")]))
            incident_id, version = incident.id, incident.version
        moves = {"public": ["triaged", "confirmed"], "embargoed": ["triaged", "confirmed"],
                 "submitted": [], "rejected": ["rejected"]}[fate]
        for to in moves:
            with session_scope() as s:
                version = transition_incident(s, self.coord.principal, incident_id, to,
                                              version).version
        if fate == "embargoed":
            with session_scope() as s:
                set_embargo(s, self.coord.principal, incident_id,
                            utcnow() + timedelta(days=365), version)
        return incident_id

    def agreement(self, lab: str, party: str, model: str, fate: str) -> int:
        """fate: public (proposed, confidential date passed), draft_dated (never
        proposed, date passed), confidential (proposed, date ahead), undated, active_undated."""
        now = utcnow()
        past = now - timedelta(days=2)
        until = {"public": past, "draft_dated": past, "confidential": now + timedelta(days=90),
                 "undated": None, "active_undated": None}[fate]
        with session_scope() as s:
            agreement = create_agreement(s, self.member(lab), AgreementCreate(
                discloser=lab, title=f"{fate} agreement", kind="research_access",
                parties=[party], scope={"models": [f"{lab}/{model}"]},
                terms="Research **only**.", starts_at=now - timedelta(days=1),
                ends_at=datetime(2100, 1, 1, tzinfo=UTC), confidential_until=until))
            agreement_id, version = agreement.id, agreement.version
        if fate != "draft_dated":
            with session_scope() as s:
                transition_agreement(s, self.member(lab), agreement_id, "proposed", version)
        if fate == "active_undated":
            with session_scope() as s:
                sign_agreement(s, self.admins[party].principal, agreement_id, party)
        return agreement_id


# GET routes the walk leaves out, and why. Any other GET route must be walked, so a new
# read endpoint is covered (or listed here) the day it appears.
NOT_WALKED = {
    "/api/v1/incidents/search",  # the search helper's byte-identical test covers it
    "/healthz", "/api/v1/tokens", "/api/v1/me",  # about the caller only
}
# HTML pages and feeds render the same service calls as the API routes walked here (their
# own leak tests are in tests/web); policies are files shipped with the code, not data.
NOT_WALKED_PREFIXES = ("/schema", "/static", "/api/v1/policies")
API = ("/api/",)

LIST_QUERIES = {
    "/api/v1/labs": ["", "?limit=200"],
    "/api/v1/models": ["", "?limit=200", "?lab={lab}"],
    "/api/v1/plans": ["?limit=200", "?model={model}", "?status=draft", "?status=withdrawn",
                      "?status=filed", "?status=active", "?lab={lab}"],
    "/api/v1/events": ["?limit=200", "?entity_type=plan&limit=200",
                       "?entity_type=model&limit=200", "?entity_type=checkpoint&limit=200",
                       "?entity_type=eval_run&limit=200", "?entity_type=incident&limit=200",
                       "?entity_type=agreement&limit=200"],
    "/api/v1/agreements": ["?limit=200", "?lab={lab}", "?status=draft", "?status=proposed"],
    "/api/v1/incidents": ["?limit=100", "?model={model}", "?lab={lab}", "?status=submitted",
                          "?status=confirmed"],
    "/api/v1/incidents/export": ["?format=json", "?format=csv"],
    "/api/v1/checkpoints": ["?limit=200", "?model={model}"],
    "/api/v1/evals/suites": [""],
    "/api/v1/evals/runs": ["?limit=200", "?model={model}", "?status=queued"],
    "/api/v1/evals/results": ["?limit=200", "?model={model}", "?source=reported"],
}
# Path templates with more than an id: what else to fill in.
EXTRA = {
    "/api/v1/plans/{plan_id:int}/revisions/{number:int}": [{"number": 1}, {"number": 2}],
    "/api/v1/plans/{plan_id:int}/diff": [{"?": "?a=1&b=2"}],
    "/api/v1/checkpoints/{checkpoint_id:int}/files/{name:str}": [{"name": "config.json"}],
}


def get_routes(app) -> list[str]:
    paths = sorted({route.path for route in app.routes
                    if "GET" in getattr(route, "methods", ())})
    return [p for p in paths if p not in NOT_WALKED and not p.startswith(NOT_WALKED_PREFIXES)
            and p.startswith(API)]


def requests_for(app, ids: dict[str, range], refs: dict[str, list[str]]) -> list[str]:
    """Every URL the outsiders ask: lists with filters (`refs` fills {model}, {lab}), and
    each detail route for every id in `ids[param]` (visible, hidden and never-used ids
    alike)."""
    urls = []
    for path in get_routes(app):
        if "{" not in path:
            queries = LIST_QUERIES[path]  # a KeyError here: a new list route to add above
            for query in queries:
                for key, values in refs.items():
                    if "{" + key + "}" in query:
                        urls += [path + query.replace("{" + key + "}", v) for v in values]
                        break
                else:
                    urls.append(path + query)
            continue
        if path == "/api/v1/labs/{slug:str}":
            urls += [f"/api/v1/labs/{lab}" for lab in refs["lab"]]
            continue
        params = [seg[1:-1].split(":")[0] for seg in path.split("/") if seg.startswith("{")]
        main = params[0]  # the entity id: the first parameter of every detail route
        for extra in EXTRA.get(path, [{}]):
            for i in ids[main]:
                values = {main: str(i), **{k: str(v) for k, v in extra.items() if k != "?"}}
                url = path
                for seg in path.split("/"):
                    if seg.startswith("{"):
                        url = url.replace(seg, values[seg[1:-1].split(":")[0]])
                urls.append(url + extra.get("?", ""))
    return urls


def answers(client, urls: list[str], headers: dict) -> dict[str, tuple]:
    """url -> (status, content type, ETag, body bytes): everything a caller can observe."""
    out = {}
    for url in urls:
        r = client.get(url, headers=headers)
        assert r.status_code < 500, (url, r.status_code, r.text)
        body = r.content
        if url.endswith("/compliance"):  # a verdict states when it was judged: the clock
            body = re.sub(rb'"as_of":"[^"]*"', b'"as_of":""', body)
        out[url] = (r.status_code, r.headers.get("content-type"), r.headers.get("etag"), body)
    return out
