"""The HTTP layer (issue 7, items 8, 9, 13, 16, 21-23): bodies, ids, problem details,
headers, request ids, OPTIONS and one rule for bad input, on both databases."""

from __future__ import annotations

import logging

import pytest
from litestar import get
from litestar.response import Stream
from litestar.testing import TestClient

from app import create_app
from app.http import CONTENT_SECURITY_POLICY
from app.ids import MAX_ID
from app.pagination import encode_cursor

PROBLEM = "application/problem+json"
HUGE = "9" * 30  # far beyond 64 bits
HARDENING = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
             "referrer-policy": "same-origin", "content-security-policy": CONTENT_SECURITY_POLICY}


def _problem(r, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Exception" not in body["title"], body  # a human title, not a class name
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def _count(client, url: str, headers: dict) -> int:
    return len(client.get(url, headers=headers).json()["items"])


# --- 8: undecodable bodies ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"title": "\xff\xfe"}', b"[" * 2000 + b"]" * 2000,
                                 b'{"title": NaN}', b'{"parameter_count": Infinity}',
                                 b'{"title": "x"'])
def test_undecodable_bodies_are_400_naming_the_body_and_store_nothing(client, world, raw):
    h = world.a_member.headers | {"content-type": "application/json"}
    before = _count(client, "/api/v1/plans", world.a_member.headers)
    _problem(client.post("/api/v1/plans", content=raw, headers=h), 400, "body")
    _problem(client.post("/api/v1/incidents", content=raw, headers=h), 400, "body")
    assert _count(client, "/api/v1/plans", world.a_member.headers) == before


def test_a_missing_body_names_the_body_not_data(client, world):
    body = _problem(client.post("/api/v1/plans", headers=world.a_member.headers), 422, "body")
    assert "data" not in body["detail"]


def test_nul_characters_are_refused_by_field(client, world):
    h = world.a_member.headers
    _problem(client.get("/api/v1/plans", params={"lab": "a\x00b"}), 422, "lab")
    r = client.post("/api/v1/plans", headers=h, json={"model": "lab-a/m", "title": "x\x00",
                                                      "stages": []})
    _problem(r, 422, "title")


# --- 9: integers beyond 64 bits -----------------------------------------------------------

@pytest.mark.parametrize("path,field", [
    (f"/api/v1/plans/{HUGE}", "plan_id"), (f"/api/v1/plans/{MAX_ID + 1}", "plan_id"),
    (f"/api/v1/incidents/{HUGE}", "incident_id"), (f"/api/v1/agreements/{HUGE}", "agreement_id"),
    (f"/api/v1/checkpoints/{HUGE}", "checkpoint_id"), (f"/api/v1/models/{HUGE}", "model_id"),
    (f"/api/v1/evals/runs/{HUGE}", "run_id"), (f"/api/v1/plans/1/revisions/{HUGE}", "number"),
    (f"/api/v1/plans/1/diff?a=1&b={HUGE}", "b"), (f"/api/v1/evals/results?checkpoint_id={HUGE}",
                                                  "checkpoint_id"),
    (f"/api/v1/incidents?year={HUGE}", "year"), (f"/api/v1/incidents/search?limit={HUGE}", "limit"),
    (f"/api/v1/plans?limit={HUGE}", "limit"),
    (f"/api/v1/plans?cursor={encode_cursor(int(HUGE))}", "cursor"),
    (f"/api/v1/plans?model={HUGE}", "model"),
])
def test_huge_integers_in_paths_queries_and_cursors_are_4xx_naming_the_field(client, world,
                                                                             path, field):
    _problem(client.get(path, headers=world.a_member.headers), 422, field)


@pytest.mark.parametrize("cursor", ['["date", "2020-01-01", 99999999999999999999999]',
                                    '["relevance", "x", 1]', '["date", 5, 1]',
                                    '["relevance", 1e999, 1]', "[" * 5000])
def test_forged_search_cursors_are_422(client, world, cursor):
    import base64

    forged = base64.urlsafe_b64encode(cursor.encode()).decode()
    sort = "date" if "date" in cursor else "relevance"
    r = client.get("/api/v1/incidents/search", params={"q": "x", "sort": sort, "cursor": forged})
    _problem(r, 422, "cursor")


def test_huge_ids_in_bodies_are_422_and_store_nothing(client, world):
    h = world.coord.headers
    inc = client.post("/api/v1/incidents", headers=h, json={
        "title": "T", "summary": "S", "occurred": "2024-01-02", "harm_types": ["phishing"],
        "severity": "low"})
    assert inc.status_code == 201, inc.text
    url = f"/api/v1/incidents/{inc.json()['id']}"
    _problem(client.post(url + "/links", headers=h, json={"report_id": int(HUGE)}), 422,
             "report_id")
    _problem(client.patch(url, headers=h, json={"version": int(HUGE), "title": "U"}), 422,
             "version")
    _problem(client.post(url + "/transitions", headers=h, json={
        "to": "duplicate", "version": 1, "duplicate_of": int(HUGE)}), 422, "duplicate_of")
    assert client.get(url, headers=h).json()["title"] == "T"


# --- 13: problem details everywhere -------------------------------------------------------

def test_litestar_errors_are_problem_details_with_human_titles(client, world):
    assert _problem(client.get("/no/such/route"), 404)["title"] == "Not Found"
    r = client.delete("/healthz")
    assert _problem(r, 405)["title"] == "Method Not Allowed" and "GET" in r.headers["allow"]
    big = {"title": "x" * (300 * 1024)}
    _problem(client.post("/api/v1/incidents", json=big), 413, "body")


def test_csv_export_names_its_charset_once(client, world):
    r = client.get("/api/v1/incidents/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"


# --- 16: hardening headers on every response ----------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/healthz"), ("GET", "/api/v1/plans"), ("GET", "/api/v1/plans/999"),
    ("GET", "/no/such/route"), ("POST", "/api/v1/plans"), ("GET", "/schema/openapi.json"),
    ("GET", "/static/missing.css"), ("OPTIONS", "/api/v1/plans"),
])
def test_every_response_carries_the_hardening_headers(client, method, path):
    r = client.request(method, path)
    for name, value in HARDENING.items():
        assert r.headers.get(name) == value, (name, r.status_code, dict(r.headers))
    assert r.headers["x-request-id"]


def test_a_header_set_by_a_handler_is_kept(settings):
    @get("/framed", sync_to_thread=False, opt={"public": True},
         response_headers={"X-Frame-Options": "SAMEORIGIN"})
    def framed() -> str:
        return "ok"

    app = create_app(settings)
    app.register(framed)
    with TestClient(app) as client:
        r = client.get("/framed")
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_swagger_ui_is_gone_and_the_document_stays(client):
    assert client.get("/schema/swagger").status_code == 404
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    assert "cdn" not in r.text.lower()


# --- 21: unhandled exceptions are logged with a request id --------------------------------

@pytest.fixture
def failing_client(settings):
    @get("/boom", sync_to_thread=False, opt={"public": True})
    def boom() -> dict:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.register(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unhandled_exception_is_a_logged_500_problem_with_its_request_id(failing_client,
                                                                           caplog):
    with caplog.at_level(logging.ERROR, logger="stagegate.http"):
        r = failing_client.get("/boom")
    body = _problem(r, 500)
    rid = r.headers["x-request-id"]
    assert body["request_id"] == rid and rid in body["detail"]
    assert "secret internals" not in r.text
    records = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert records and records[0].exc_info and "RuntimeError" in caplog.text


@pytest.mark.parametrize("incoming,kept", [("req-42.a:b", True), ("x" * 129, False),
                                           ("evil\tlog", False), ("", False)])
def test_a_sane_incoming_request_id_is_kept(failing_client, caplog, incoming, kept):
    with caplog.at_level(logging.ERROR, logger="stagegate.http"):
        r = failing_client.get("/boom", headers={"X-Request-ID": incoming})
    rid = r.headers["x-request-id"]
    assert (rid == incoming) is kept and r.json()["request_id"] == rid
    assert rid in caplog.text


def test_request_ids_differ_between_requests(client):
    assert client.get("/healthz").headers["x-request-id"] != \
        client.get("/healthz").headers["x-request-id"]


# --- 22: the OpenAPI document and OPTIONS -------------------------------------------------

@pytest.fixture
def doc(client):
    return client.get("/schema/openapi.json").json()


def test_openapi_declares_problem_responses_and_security(doc):
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    file_plan = doc["paths"]["/api/v1/plans"]["post"]
    assert {"400", "401", "403", "404", "409", "413", "422"} <= set(file_plan["responses"])
    problem = file_plan["responses"]["422"]["content"][PROBLEM]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert file_plan["security"] == [{"bearer": []}]
    listing = doc["paths"]["/api/v1/plans"]["get"]
    assert {} in listing["security"] and "409" not in listing["responses"]
    assert "429" in doc["paths"]["/api/v1/incidents"]["post"]["responses"]


def test_openapi_declares_enums_limits_multipart_and_if_match(doc):
    params = {p["name"]: p for p in doc["paths"]["/api/v1/plans"]["get"]["parameters"]}
    status = params["status"]["schema"]
    enum = status.get("enum") or [v for s in status.get("oneOf", []) for v in s.get("enum", [])]
    assert "draft" in enum and "withdrawn" in enum
    assert params["limit"]["schema"]["maximum"] == 200
    plan_id = doc["paths"]["/api/v1/plans/{plan_id}"]["get"]["parameters"][0]["schema"]
    assert plan_id["maximum"] == MAX_ID and plan_id["minimum"] == 1
    upload = doc["paths"]["/api/v1/checkpoints"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["files"]["type"] == "array"
    revise = doc["paths"]["/api/v1/plans/{plan_id}"]["patch"]
    assert "If-Match" in [p["name"] for p in revise["parameters"]]


@pytest.mark.parametrize("path,methods", [
    ("/api/v1/plans/1", {"GET", "PATCH", "OPTIONS"}),
    ("/api/v1/plans", {"GET", "POST", "OPTIONS"}),
    ("/api/v1/incidents/1", {"GET", "PATCH", "OPTIONS"}),
])
def test_options_answers_the_routes_real_methods(client, path, methods):
    r = client.options(path)
    assert r.status_code == 204
    assert {m.strip() for m in r.headers["allow"].split(",")} == methods


# --- 23: one rule for bad input -----------------------------------------------------------

def test_an_unknown_target_state_is_422_and_a_blocked_move_409(client, world):
    plan_id = world.plan(filed=False)
    url = f"/api/v1/plans/{plan_id}/transitions"
    h = world.a_member.headers
    _problem(client.post(url, json={"to": "bogus", "version": 1}, headers=h), 422, "to")
    # a stage status is not a plan status either
    _problem(client.post(url, json={"to": "released", "version": 1}, headers=h), 422, "to")
    _problem(client.post(url, json={"to": "completed", "version": 1}, headers=h), 409, "to")
    stage = f"/api/v1/plans/{plan_id}/stages/1/transitions"
    _problem(client.post(stage, json={"to": "filed", "version": 1}, headers=h), 422, "to")
    assert client.get(f"/api/v1/plans/{plan_id}", headers=h).json()["status"] == "draft"


@pytest.mark.parametrize("url,field", [
    ("/api/v1/plans?status=bogus", "status"), ("/api/v1/agreements?status=bogus", "status"),
    ("/api/v1/agreements?kind=bogus", "kind"), ("/api/v1/incidents?status=bogus", "status"),
    ("/api/v1/incidents?severity=bogus", "severity"),
    ("/api/v1/incidents?harm_type=bogus", "harm_type"),
    ("/api/v1/incidents/search?sort=bogus", "sort"),
    ("/api/v1/incidents/export?format=xml", "format"),
    ("/api/v1/evals/runs?status=bogus", "status"),
    ("/api/v1/evals/results?source=bogus", "source"),
    ("/api/v1/plans?lab=no-such-lab", "lab"), ("/api/v1/incidents?lab=no-such-lab", "lab"),
    ("/api/v1/plans?model=lab-a/none", "model"), ("/api/v1/incidents?model=lab-a/none", "model"),
    ("/api/v1/checkpoints?model=lab-a/none", "model"),
])
def test_an_unknown_filter_value_is_422_naming_it_on_every_list(client, world, url, field):
    _problem(client.get(url, headers=world.a_member.headers), 422, field)


def test_a_hidden_model_filter_answers_like_a_missing_one(client, world):
    with_private = client.patch(f"/api/v1/models/{world.model_b}", headers=world.b_member.headers,
                                json={"public": False, "version": 1})
    assert with_private.status_code == 200, with_private.text
    hidden = client.get("/api/v1/incidents?model=lab-b/m")
    missing = client.get("/api/v1/incidents?model=lab-b/zz")
    assert hidden.status_code == missing.status_code == 422
    assert hidden.json()["errors"][0]["field"] == missing.json()["errors"][0]["field"]


@pytest.mark.parametrize("key", ["stage_ids", "checkpoint_ids"])
def test_incident_references_must_exist(client, world, key):
    body = {"title": "T", "summary": "S", "occurred": "2024-01-02", "harm_types": ["phishing"],
            "severity": "low", key: [999999]}
    before = len(client.get("/api/v1/incidents/export", headers=world.coord.headers).json())
    _problem(client.post("/api/v1/incidents", json=body, headers=world.a_member.headers),
             422, f"{key}[0]")
    after = len(client.get("/api/v1/incidents/export", headers=world.coord.headers).json())
    assert after == before


def test_an_existing_stage_is_accepted(client, world):
    from sqlmodel import select

    from app.db import session_scope
    from app.plans.tables import Stage

    plan_id = world.plan(filed=True)
    with session_scope(write=False) as session:
        stage_id = session.exec(select(Stage.id).where(Stage.plan_id == plan_id)).first()
    r = client.post("/api/v1/incidents", headers=world.a_member.headers, json={
        "title": "T", "summary": "S", "occurred": "2024-01-02", "harm_types": ["phishing"],
        "severity": "low", "stage_ids": [stage_id]})
    assert r.status_code == 201 and r.json()["stage_ids"] == [stage_id]


def test_no_response_repeats_its_charset(settings):
    @get("/twice", sync_to_thread=False, opt={"public": True})
    def twice() -> Stream:
        return Stream(iter([b"a,b\n"]), media_type="text/csv; charset=utf-8")

    app = create_app(settings)
    app.register(twice)
    with TestClient(app) as client:
        assert client.get("/twice").headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("etag", [f'"{HUGE}"', '"²"'.encode(), '"abc"'])
def test_a_bad_if_match_is_422_and_changes_nothing(client, world, etag):
    plan_id = world.plan(filed=False)
    url = f"/api/v1/plans/{plan_id}"
    h = world.a_member.headers
    _problem(client.patch(url, json={"title": "New"}, headers=h | {"If-Match": etag}), 422,
             "If-Match")
    assert client.get(url, headers=h).json()["title"] == "Staged release"
