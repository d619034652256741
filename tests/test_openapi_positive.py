"""Schemathesis, valid data only: what /schema/openapi.json allows, the server accepts.

Every operation gets a few requests generated from its schema (GenerationMode.POSITIVE),
each sent as an anonymous caller, a lab member and a coordinator, with the checks
`positive_data_acceptance`, `status_code_conformance`, `not_a_server_error` and
`response_schema_conformance`. A valid request may still be refused for a reason of state
that the document declares and no schema can know: 401 (anonymous), 403 (role), 404 (an id
that does not exist or is hidden), 409 (a stale version, a move not allowed now), 429 (the
anonymous submission limit); 304 answers an If-None-Match that matches. Never 400, 413 or
422.

What an outside tester supplies, because JSON Schema cannot say it (each rule is in the
field's or parameter's description): names of things that exist (a filter or reference
naming none answers 422 by design, README "Errors"), the values only the server or a
harness makes (a search cursor carries its query and sort; an lm-eval results file), and
the rules that compare two fields or a value with the clock (ends after starts, expiries
in the future, a release day of today). A checkpoint upload is not judged for acceptance:
its parts' file names carry meaning and its text fields must come first. Bounded: a
database takes well under a minute.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_openapi_fuzz import OPERATIONS
from tests.visibility_world import LM_EVAL

CHECKS = [positive_data_acceptance, status_code_conformance, not_a_server_error,
          response_schema_conformance]
EXAMPLES = 5
# The refusals of state the document declares on the routes that can give them.
EXPECTED = ["2xx", "304", "401", "403", "404", "409", "429"]
# No generated Authorization header: each request goes out as each of the actors.
CONFIG = {"generation": {"with-security-parameters": False},
          "checks": {"positive_data_acceptance": {"expected-statuses": EXPECTED}}}

# Values an outside tester supplies: names of things that must exist, documents only the
# server or a harness makes, and the rules the document states in words because JSON
# Schema cannot compare two fields or a value with the clock.
QUERY = {"lab": "lab-a", "model": "lab-a/m"}
NAMES = {"labs": ["lab-a"], "models": ["lab-a/m"], "parties": ["lab-b"],
         "stage_ids": [], "checkpoint_ids": []}
SCOPE = {"models": ["lab-a/m"], "stages": [], "checkpoints": []}
FUTURE, PAST = "2999-01-01T00:00:00Z", "2000-01-01T00:00:00Z"
POLICY, RULE = "gpt2-2019", "months-between-stages"


def supply(case) -> None:
    """Put real names and rule-abiding values where the schema can only say what a value
    looks like (each rule is in the field's description)."""
    path = case.operation.path
    query = case.query or {}
    for key, value in QUERY.items():
        if key in query:
            query[key] = value
    if path in ("/api/v1/incidents", "/api/v1/incidents/search"):
        query.pop("cursor", None)  # carries its query and sort: only the server makes one
    body = case.body
    if not isinstance(body, dict):
        return
    for key, value in NAMES.items():
        if isinstance(body.get(key), list) and body[key]:
            body[key] = list(value)
    scope = body.get("scope") if isinstance(body.get("scope"), dict) else {}
    for key, value in SCOPE.items():
        if isinstance(scope.get(key), list) and scope[key]:
            scope[key] = list(value)
    if "discloser" in body:
        body["discloser"] = "lab-a"
    if "template" in body:
        body["template"] = "non_commercial_access_2019"
    if body.get("starts_at") is not None or body.get("ends_at") is not None:
        body.update(starts_at=PAST, ends_at=FUTURE)  # ends after it starts
    if body.get("expires_at") is not None:
        body["expires_at"] = FUTURE  # tokens and exemptions expire in the future
    if "actual_date" in body:
        body["actual_date"] = None  # a release day is today; only a coordinator backdates
    if path.endswith("/exemptions"):
        body.update(policy=POLICY, rule=RULE)  # one the plan follows
    if path == "/api/v1/policies/simulate":
        body.pop("policy_yaml", None)
        body["policy"] = POLICY
    if path.endswith("/reported-results"):
        body.update(format="lm-eval-harness", content=LM_EVAL, checkpoint_id=None)
    if path.endswith("/transitions") and body.get("duplicate_of") is not None:
        body["duplicate_of"] = 2 if case.path_parameters.get("incident_id") == 1 else 1


def _populate(world) -> None:
    """Plans following POLICY (ids 1, 2) and an incident (id 1), so that half the
    requests reach objects that exist."""
    from datetime import date

    from app.db import session_scope
    from app.incidents.schemas import IncidentCreate
    from app.incidents.service import submit_incident
    from app.plans.schemas import PlanCreate
    from app.plans.service import file_plan
    from tests.factories import FOUR_STAGES

    with session_scope() as s:
        for filed in (True, False):
            file_plan(s, world.a_member.principal, PlanCreate(
                model="lab-a/m", title="Staged release", stages=FOUR_STAGES, file=filed,
                policies=[POLICY]))
        submit_incident(s, world.a_member.principal, IncidentCreate(
            title="Misuse", occurred=date(2024, 5, 1), harm_types=["disinformation"],
            severity="high", labs=["lab-a"], models=["lab-a/m"]))


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app,
                                          config=SchemathesisConfig.from_dict(CONFIG))


def _walk(operation, actors: list[dict]) -> None:
    @given(case=operation.as_strategy(GenerationMode.POSITIVE), seed=st.integers(0, 3))
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         database=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    def run(case, seed):
        # Three ids in four name objects of the world (1..3); the rest mostly none.
        for key, value in (case.path_parameters or {}).items():
            if isinstance(value, int) and seed:
                case.path_parameters[key] = seed
        supply(case)
        checks = CHECKS
        if case.operation.path == "/api/v1/checkpoints" and case.method.upper() == "POST":
            # The parts' file names carry meaning (config.json, *.safetensors) and the
            # text fields must come first; no schema can say either (tests/checkpoints).
            checks = [c for c in CHECKS if c is not positive_data_acceptance]
        for headers in actors:
            case.call_and_validate(checks=checks, headers=headers)

    run()


def test_valid_requests_are_accepted(api_schema, world, settings):
    """One database per backend for the whole walk; every operation is tried and all
    findings are reported at once."""
    _populate(world)
    actors = [{}, world.a_member.headers, world.coord.headers]
    failures = []
    for method, path in OPERATIONS:
        try:
            _walk(api_schema[path][method], actors)
        # schemathesis raises a FailureGroup, a BaseExceptionGroup, for several findings.
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (reported below)
            failures.append(f"{method} {path}:\n{exc}")
    assert not failures, "\n\n".join(failures)


def test_search_words_pattern_is_a_query_the_server_reads():
    """The `q` pattern is the plain form of the search syntax: every match parses."""
    from app.incidents.search import parse_query
    from app.openapi import SEARCH_WORDS

    for q in ["a", "gpt2 misuse", " x ", "or and", "ORx NOTy"]:
        assert re.fullmatch(SEARCH_WORDS, q), q
        parse_query(q)
    for q in ["OR", "a OR", "NOT b", "", "a  b"]:
        assert not re.fullmatch(SEARCH_WORDS, q), q


def test_every_cursor_the_pattern_allows_decodes():
    from hypothesis import given as given_
    from hypothesis import settings as settings_

    from app.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor

    @given_(st.from_regex(CURSOR_PATTERN, fullmatch=True))
    @settings_(max_examples=300, derandomize=True, database=None)
    def decodes(cursor):
        assert decode_cursor(cursor) is not None

    decodes()
    for last in (1, 9, 10, 999, 10**17, 10**18 - 1):
        assert re.fullmatch(CURSOR_PATTERN, encode_cursor(last))


def test_every_text_input_says_it_refuses_nul(client):
    """Every string a client sends (body fields, query and path parameters) carries a
    pattern, an enum or a format: at least the NUL the server refuses (app/http.py)."""
    doc = client.get("/schema/openapi.json").json()
    loose = []

    def check(node, where):
        if isinstance(node, dict):
            if node.get("type") == "string" and not any(
                    key in node for key in ("pattern", "enum", "const", "format")):
                loose.append(where)
            for key, value in node.items():
                check(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                check(value, f"{where}[{i}]")

    bodies = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                check(param["schema"], f"{method} {path} {param['name']}")
            for content in op.get("requestBody", {}).get("content", {}).values():
                ref = content["schema"].get("$ref")
                if ref:
                    bodies.add(ref.rsplit("/", 1)[1])
                else:
                    check(content["schema"], f"{method} {path} body")
    seen = set()
    while bodies - seen:
        name = (bodies - seen).pop()
        seen.add(name)
        check(doc["components"]["schemas"][name], name)
        bodies |= set(re.findall(r'"#/components/schemas/([^"]+)"',
                                 json.dumps(doc["components"]["schemas"][name])))
    assert not loose, loose

