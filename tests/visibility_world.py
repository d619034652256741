"""Builders for visibility tests: objects made through the services, the outsiders' view
of every GET route (walked from the app's own route table) and of the public pages, and
the deep sweep that looks for hidden objects in every value of every answer."""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote

from sqlalchemy import select

from app.agreements.schemas import AgreementCreate
from app.agreements.service import create_agreement, sign_agreement, transition_agreement
from app.auth.principal import SYSTEM, Principal
from app.auth.service import create_token, create_user, principal_for_user
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.evals.reported import import_reported
from app.evals.schemas import ReportedImport
from app.evals.service import TRANSFER_SUITE, result_key, store_result, suite_version
from app.evals.tables import EvalResult, EvalRun
from app.flows import transition_stage, upload_checkpoint
from app.incidents.schemas import IncidentCreate, ReportCreate
from app.incidents.service import set_embargo, submit_incident, transition_incident
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model, get_model, update_model
from app.plans.schemas import PlanCreate, PlanUpdate
from app.plans.service import file_plan, revise_plan, transition_plan
from app.timeutil import digest, utcnow
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

    def plan(self, lab: str, model: str, lifecycle: str, tag: str = "") -> int:
        """lifecycle: draft, withdrawn_draft, filed, withdrawn_filed, active, revised_draft.
        `tag` goes into the titles, so a sweep can look for them."""
        who = self.member(lab)
        filed = lifecycle in ("filed", "withdrawn_filed", "active")
        with session_scope() as s:
            plan = file_plan(s, who, PlanCreate(model=f"{lab}/{model}",
                                                title=f"{lifecycle} plan{tag}",
                                                summary="Confidential *until filed*.",
                                                stages=FOUR_STAGES, file=filed,
                                                policies=self.policies))
            plan_id, version = plan.id, plan.version
        with session_scope() as s:
            if lifecycle == "revised_draft":
                revise_plan(s, who, plan_id, PlanUpdate(version=version,
                                                          title=f"Secret title{tag}"))
            elif lifecycle in ("withdrawn_draft", "withdrawn_filed"):
                transition_plan(s, who, plan_id, "withdrawn", version, "changed our mind")
            elif lifecycle == "active":
                for to in ("ready", "released"):
                    version = transition_stage(s, who, plan_id, 1, to, version).version
        return plan_id

    def checkpoint(self, lab: str, model: str, name: str, access: str,
                   salt: str | None = None) -> int:
        """`salt` goes into config.json, so the checkpoint has a manifest digest (and a
        config file digest) of its own that a sweep can look for."""
        files = dict(CHECKPOINT_FILES)
        if salt is not None:
            files["config.json"] = json.dumps({**json.loads(files["config.json"]),
                                               "_name_or_path": salt}).encode()
        with session_scope() as s:
            return upload_checkpoint(s, self.member(lab), CheckpointCreate(
                model=f"{lab}/{model}", name=name, access_level=access),
                [(n, io.BytesIO(b)) for n, b in files.items()]).id

    def transfer_result(self, anchor_id: int, named: list[int]) -> int:
        """A detectability-transfer matrix anchored at `anchor_id` over it and `named`,
        stored as the worker stores one (app/evals/worker.py: store_result with the
        family), without touching the anchor's run: finishing a run is a visible change."""
        with session_scope() as s:
            anchor = s.get(Checkpoint, anchor_id)
            family = [anchor, *(s.get(Checkpoint, c) for c in named)]
            run_id = s.execute(select(EvalRun.id).where(
                EvalRun.checkpoint_id == anchor_id, EvalRun.suite_id == TRANSFER_SUITE)
                .order_by(EvalRun.id)).scalars().first()
            n = len(family)
            matrix = [[1.0 if i == j else round(0.5 + 0.1 * (i + j) / n, 3)
                       for j in range(n)] for i in range(n)]
            family_digest = digest(sorted(c.manifest_digest for c in family))
            config = {"method": "logistic"}
            result = store_result(s, EvalResult(
                result_key=result_key("test-transfer", family_digest, anchor_id),
                source="measured", model_id=anchor.model_id, checkpoint_id=anchor.id,
                run_id=run_id, manifest_digest=family_digest, suite_id=TRANSFER_SUITE,
                suite_version=suite_version(TRANSFER_SUITE), config=config,
                config_digest=digest(config), seed=0,
                metrics={"mean_self_accuracy": 1.0,
                         "mean_transfer_accuracy": matrix[0][-1] if n > 1 else 1.0},
                details={"labels": [c.name for c in family], "matrix": matrix,
                         "checkpoints": {c.name: c.manifest_digest for c in family}},
                origin={"by": "stagegate", "worker": "visibility-test"}),
                named=[c.id for c in family[1:]])
            return result.id

    def reported(self, lab: str, model_id: int, checkpoint_id: int | None) -> None:
        with session_scope() as s:
            import_reported(s, self.member(lab), model_id, ReportedImport(
                format="lm-eval-harness", content=LM_EVAL, checkpoint_id=checkpoint_id))

    def incident(self, lab: str, model: str | None, fate: str, tag: str = "") -> int:
        """fate: public, embargoed, submitted, rejected."""
        with session_scope() as s:
            incident = submit_incident(s, self.member(lab), IncidentCreate(
                title=f"{fate} incident{tag}", summary="Details under *embargo*.",
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

    def agreement(self, lab: str, party: str, model: str, fate: str, tag: str = "") -> int:
        """fate: public (proposed, confidential date passed), draft_dated (never
        proposed, date passed), confidential (proposed, date ahead), undated, active_undated."""
        now = utcnow()
        past = now - timedelta(days=2)
        until = {"public": past, "draft_dated": past, "confidential": now + timedelta(days=90),
                 "undated": None, "active_undated": None}[fate]
        with session_scope() as s:
            agreement = create_agreement(s, self.member(lab), AgreementCreate(
                discloser=lab, title=f"{fate} agreement{tag}", kind="research_access",
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
# Policies are files shipped with the code, not data. HTML pages are walked by
# pages_for below (the public ones; the console and lab pages need a login).
# The transparency log (/api/v1/log) announces, by design, that something happened and
# when, hidden or not: its tree grows with every event (README "Transparency log", what a
# commitment reveals). What it must not reveal (who, what, which entity) is checked in
# tests/transparency/test_log.py: sealed leaves carry only their four keys, openings of
# hidden events answer 404, and an entity's leaf index is only the latest it may open.
# The remote-worker routes answer worker tokens only (tests/auth/test_worker_token_scope).
NOT_WALKED_PREFIXES = ("/schema", "/static", "/api/v1/policies", "/api/v1/log",
                       "/api/v1/worker")
API = ("/api/",)

# Public pages and feeds, walked like the API: lists with filters, and each page of an
# entity for visible, hidden and never-used ids and model refs. Left out: the policies
# (files), the report form (a fresh CSRF token each time) and the progress stream (SSE).
PAGE_LISTS = ["/", "/models", "/models?lab={lab}", "/models?q=h", "/incidents",
              "/incidents?lab={lab}", "/feeds/incidents.atom", "/feeds/releases.atom"]
PAGE_DETAILS = {"plan_id": "/plans/{}", "agreement_id": "/agreements/{}",
                "incident_id": "/incidents/{}"}


def judged_on_all_evidence(url: str) -> bool:
    """Answers that carry a plan's verdicts, which count hidden evidence on purpose (README:
    "What an outsider sees of a verdict"): the deep sweep checks them, byte-identity does
    not hold."""
    path = url.split("?")[0]
    return (path.endswith(("/compliance", "/compliance/history"))
            or path.startswith(("/plans/", "/models/")) and path.count("/") >= 2)


def pages_for(ids: dict[str, range], refs: dict[str, list[str]]) -> list[str]:
    urls = []
    for page in PAGE_LISTS:
        urls += ([page.replace("{lab}", lab) for lab in refs["lab"]] if "{lab}" in page
                 else [page])
    urls += [f"/labs/{lab}" for lab in refs["lab"]]
    urls += [f"/models/{ref}" for ref in refs["model"]]
    for param, template in PAGE_DETAILS.items():
        urls += [template.format(i) for i in ids[param]]
    return urls

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
    "/api/v1/checkpoints/stage/{plan_id:int}/{position:int}": [{"position": 1},
                                                               {"position": 3}],
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
        if url.startswith("/api/v1/events") and b"verdict_changed" in body:
            # Verdicts are judged on all the evidence (hidden evidence is counted, never
            # named): their announcements are swept, not compared.
            doc = json.loads(body)
            doc["items"] = [e for e in doc["items"] if e["action"] != "verdict_changed"]
            body = json.dumps(doc).encode()
        if url.startswith("/feeds/") and b"<entry>" not in body:
            # An empty feed is "updated" now (the clock); with entries, at the newest.
            body = re.sub(rb"<updated>[^<]*</updated>", b"<updated/>", body, count=1)
        out[url] = (r.status_code, r.headers.get("content-type"), r.headers.get("etag"), body)
    return out


# The deep sweep: byte-identical answers prove nothing about answers the property does not
# compare (the pages, a compliance verdict), and a failure should say where the hidden
# thing showed. So every value of every answer is searched for what only hidden objects
# carry: their names and titles (each holds a random tag), checkpoints' manifest and file
# digests, and their ids where a value says what it is an id of (a field named after the
# entity, an event's entity_id, the id of an entity answered by its own route, a link).
ID_KEYS = {"plan_id": "plan_id", "model_id": "model_id", "checkpoint_id": "checkpoint_id",
           "run_id": "run_id", "result_id": "result_id", "agreement_id": "agreement_id",
           "incident_id": "incident_id", "duplicate_of": "incident_id"}
EVENT_ENTITIES = {"plan": "plan_id", "model": "model_id", "checkpoint": "checkpoint_id",
                  "eval_run": "run_id", "eval_result": "result_id",
                  "incident": "incident_id", "agreement": "agreement_id"}
ROUTE_ENTITY = re.compile(r"^/api/v1/(plans|models|checkpoints|agreements|incidents"
                          r"|evals/runs|evals/results)(?:/(\d+)|/export)?(?:\?.*)?$")
LINK = re.compile(r"/(?:api/v1/)?(plans|models|checkpoints|agreements|incidents|evals/runs"
                  r"|evals/results)/(\d+)(?![\d.])")
SEGMENT_PARAM = {"plans": "plan_id", "models": "model_id", "checkpoints": "checkpoint_id",
                 "agreements": "agreement_id", "incidents": "incident_id",
                 "evals/runs": "run_id", "evals/results": "result_id"}


def hidden_needles(tag: str, checkpoint_ids: range) -> dict[str, str]:
    """needle (lower case) -> what it is: the tag every hidden name and title carries, and
    the manifest digest and file digests of each hidden checkpoint that no visible one
    shares."""
    needles = {tag.lower(): "the tag of hidden names and titles"}
    with session_scope(write=False) as s:
        rows = s.execute(select(Checkpoint)).scalars().all()
        seen = {f["sha256"] for c in rows if c.id not in checkpoint_ids
                for f in c.manifest} | {c.manifest_digest for c in rows
                                        if c.id not in checkpoint_ids}
        for c in rows:
            if c.id in checkpoint_ids:
                for value, what in [(c.manifest_digest, "manifest digest"),
                                    *((f["sha256"], f"{f['name']} digest")
                                      for f in c.manifest)]:
                    if value not in seen:
                        needles[value.lower()] = f"hidden checkpoint {c.id} {c.name!r} {what}"
    return needles


def _walk(value, path: str = "$") -> Iterator[tuple[str, str | None, object]]:
    """(path, key it sits under, value) for every value, dict keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}<key>", None, k
            yield from _walk(v, f"{path}.{k}") if isinstance(v, dict | list) else [
                (f"{path}.{k}", k, v)]
            if isinstance(v, list):
                yield f"{path}.{k}", k, v
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]") if isinstance(v, dict | list) else [
                (f"{path}[{i}]", None, v)]


def _asked(url: str) -> set[tuple[str, int]]:
    """The ids the request itself names (an answer may echo them: a 404 for a hidden id
    is byte-identical to one for an id never used, which the property checks)."""
    return {(SEGMENT_PARAM[m[1]], int(m[2])) for m in LINK.finditer(url.split("?")[0])}


def _echoes(url: str) -> list[str]:
    """The parts of the request (path segments, query values): an answer may repeat them
    ("no model lab-a/h0-..."), exactly as it would for a name that never existed."""
    parts = unquote(url).replace("?", "/").replace("&", "/").split("/")
    return sorted({p.split("=", 1)[-1] for p in parts} | {unquote(url).split("=", 1)[-1]},
                  key=len, reverse=True)


def _text_hits(text: str, needles: dict[str, str], hidden: dict[str, set[int]],
               asked: set, echoes: list[str] = ()) -> list[str]:
    for echo in echoes:
        # Route words ("plans", "models") are not echoes: a link to a hidden id has them.
        if len(echo) >= 4 and not re.fullmatch(r"[a-z.]+", echo):
            text = text.replace(echo, "")
    low = text.lower()
    hits = [what for needle, what in needles.items() if needle in low]
    for m in LINK.finditer(text):
        param, i = SEGMENT_PARAM[m[1]], int(m[2])
        if i in hidden.get(param, ()) and (param, i) not in asked:
            hits.append(f"link to hidden {param} {i}")
    return hits


def leaks(url: str, content_type: str | None, body: bytes, needles: dict[str, str],
          hidden: dict[str, set[int]]) -> list[str]:
    """Every place in one answer where a hidden object shows: '$.path: what' for JSON,
    'body: what' for any other text (HTML, Atom, CSV, Markdown)."""
    asked, echoes = _asked(url), _echoes(url)
    text = body.decode("utf-8", "replace")
    if not (content_type or "").split(";")[0].strip().endswith("json"):
        return [f"body: {what}" for what in _text_hits(text, needles, hidden, asked, echoes)]
    try:
        doc = json.loads(text)
    except ValueError:
        return [f"body: {what}" for what in _text_hits(text, needles, hidden, asked, echoes)]
    out = []
    route = ROUTE_ENTITY.match(url)
    own = SEGMENT_PARAM[route[1]] if route and "/events" not in url else None
    entity_top = re.compile(r"^\$(\.items)?(\[\d+\])?$")

    def is_hidden(param: str | None, value) -> bool:
        if param is None or isinstance(value, bool):
            return False
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return (isinstance(value, int) and value in hidden.get(param, ())
                and (param, value) not in asked)

    for path, key, value in _walk(doc):
        if isinstance(value, str):
            out += [f"{path}: {what}" for what in _text_hits(value, needles, hidden, asked,
                                                                  echoes)]
        if key is None:
            continue
        param = ID_KEYS.get(key) or (ID_KEYS.get(key[:-1]) if key.endswith("_ids") else None)
        if key == "id" and own and entity_top.match(path.rsplit(".", 1)[0]):
            param = own
        values = value if isinstance(value, list) else [value]
        out += [f"{path}: hidden {param} {v}" for v in values if is_hidden(param, v)]
    # An event names its entity by type and id.
    for path, obj in _objects(doc):
        param = EVENT_ENTITIES.get(obj.get("entity_type"))
        if param and is_hidden(param, obj.get("entity_id")):
            out.append(f"{path}.entity_id: hidden {param} {obj['entity_id']}")
    return out


def _objects(value, path: str = "$") -> Iterator[tuple[str, dict]]:
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _objects(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _objects(v, f"{path}[{i}]")
