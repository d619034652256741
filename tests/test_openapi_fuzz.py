"""Schemathesis against /schema/openapi.json: no 5xx, every answer declared and matching.

Each operation gets a few generated requests (valid and invalid ones), each sent twice: as an
anonymous caller and as a lab member. Bounded so a database takes well under two minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.incidents import api as incidents_api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES = 6


def _operations() -> list[tuple[str, str]]:
    from app import create_app

    # Litestar's own document has the same paths; no client, so no lifespan and no worker.
    doc = create_app().openapi_schema.to_schema()
    return sorted((method.upper(), path) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete"))


OPERATIONS = _operations()


def _ids_are_32_bit(settings) -> bool:
    """PostgreSQL ids are still `integer` until the 64-bit migration (issue 7, item 17) lands;
    until then ids past 2**31 are that item's known 500, not this test's finding."""
    if not settings.database_url.startswith("postgresql"):
        return False
    from sqlalchemy import text

    from app.db import engine_for

    with engine_for(settings.database_url).connect() as conn:
        kind = conn.execute(text("SELECT data_type FROM information_schema.columns WHERE "
                                 "table_name = 'release_plan' AND column_name = 'id'")).scalar()
    return kind == "integer"


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int | float) and float(value).is_integer():
        yield int(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _ints(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _ints(item)


@pytest.fixture
def api_schema(app):
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    # The anonymous submission limit is process state today; leave it full for other tests.
    bucket = getattr(incidents_api, "ANONYMOUS_SUBMISSIONS", None)
    if bucket is not None:
        bucket.reset()


def test_the_walk_finds_the_api():
    assert len(OPERATIONS) >= 40 and ("POST", "/api/v1/checkpoints") in OPERATIONS


def _fuzz(operation, member_headers: dict, small_ids: bool) -> None:
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    try:
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)
    except Exception:  # noqa: BLE001 (an operation with nothing to get wrong)
        pass

    @given(case=strategy)
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         database=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    def run(case):
        if small_ids:
            values = [case.path_parameters, case.query, case.body]
            assume(all(abs(v) < 2**31 for v in _ints(values)))
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        case.call_and_validate(checks=CHECKS)
        case.call_and_validate(checks=CHECKS, headers=member_headers)

    run()


def test_api_answers_only_what_it_declares(api_schema, world, settings):
    """One database per backend for the whole walk (a database per operation would cost
    more than the requests); every operation is tried and all findings reported at once."""
    small_ids = _ids_are_32_bit(settings)
    failures = []
    for method, path in OPERATIONS:
        try:
            _fuzz(api_schema[path][method], world.a_member.headers, small_ids)
        except Exception as exc:  # noqa: BLE001 (collected and reported below)
            failures.append(f"{method} {path}:\n{exc}")
    assert not failures, "\n\n".join(failures)
