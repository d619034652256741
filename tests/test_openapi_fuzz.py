"""Schemathesis against /schema/openapi.json: no 5xx, every answer declared and matching.

Each operation gets a few generated requests (valid and invalid ones), each sent twice: as an
anonymous caller and as a lab member. Bounded so a database takes well under two minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES = 4


def _operations() -> list[tuple[str, str]]:
    from app import create_app

    # Litestar's own document has the same paths; no client, so no lifespan and no worker.
    doc = create_app().openapi_schema.to_schema()
    return sorted((method.upper(), path) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete"))


OPERATIONS = _operations()


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


def test_the_walk_finds_the_api():
    assert len(OPERATIONS) >= 40 and ("POST", "/api/v1/checkpoints") in OPERATIONS


def _fuzz(operation, member_headers: dict) -> None:
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
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        case.call_and_validate(checks=CHECKS)
        case.call_and_validate(checks=CHECKS, headers=member_headers)

    run()


def test_api_answers_only_what_it_declares(api_schema, world, settings):
    """One database per backend for the whole walk (a database per operation would cost
    more than the requests); every operation is tried and all findings reported at once."""
    failures = []
    for method, path in OPERATIONS:
        try:
            _fuzz(api_schema[path][method], world.a_member.headers)
        # schemathesis raises a FailureGroup, a BaseExceptionGroup, for several findings.
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (reported below)
            failures.append(f"{method} {path}:\n{exc}")
    assert not failures, "\n\n".join(failures)
