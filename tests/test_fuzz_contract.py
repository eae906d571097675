"""Fuzz every operation of the OpenAPI document as each role (schemathesis).

Checks: no 5xx, every response conforms to its documented schema, status code, headers
and content type. A bounded run is part of the test suite; `FUZZ_EXAMPLES` raises the
number of generated cases per operation and role for a long run (see README). Each run
draws its cases from a fresh seed, printed at the start and in any failure;
`FUZZ_SEED=<n>` replays that run's cases.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.core.failures import FailureGroup

from tests.fuzz_seed import announce, derived_seed, run_seed
from tests.helpers import Factory

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ROLES = ("participant", "coordinator", "monitor", "admin")
SEED = run_seed()


@pytest.fixture(scope="module", autouse=True)
def _announce_seed(pytestconfig: pytest.Config) -> None:
    announce(pytestconfig, "contract fuzz", SEED, EXAMPLES)


def _token(factory: Factory, role: str) -> str:
    """A token of the role; the coordinator's site (BJ302) holds a participant."""
    participant = factory.participant(site="BJ302")
    if role == "participant":
        return factory.token(participant)
    return factory.token(factory.staff(role, sites=("BJ302",) if role == "coordinator" else ()))


def _fuzz_operation(operation, headers: dict[str, str], role: str) -> None:
    @seed(derived_seed(SEED, role, operation.label))
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers)

    run()


def contract_failures(contract, headers: dict[str, str], role: str) -> tuple[int, dict[str, str]]:
    """Fuzzes every operation and returns how many there were and each one's failure.

    Schemathesis reports its findings as a `FailureGroup`, a BaseExceptionGroup and not
    an Exception: caught as such, so one failing operation does not stop the others or
    lose the seed that replays it.
    """
    failures: dict[str, str] = {}
    operations = 0
    for result in contract.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz_operation(operation, headers, role)
        except (Exception, FailureGroup) as exc:  # collect every failure, report them all
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    return operations, failures


@pytest.mark.parametrize("role", ROLES)
def test_contract(app, factory: Factory, role: str):
    contract = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {_token(factory, role)}"}
    operations, failures = contract_failures(contract, headers, role)
    assert operations > 10
    assert not failures, f"replay with FUZZ_SEED={SEED}\n\n" + "\n\n".join(
        f"{k}\n{v}" for k, v in failures.items()
    )


def test_a_server_error_is_collected_and_the_other_operations_still_run():
    """The harness itself: a 500 on one operation is reported, the next is still fuzzed."""
    contract = schemathesis.openapi.from_wsgi("/openapi.json", _two_operation_app())
    operations, failures = contract_failures(contract, {}, "admin")
    assert operations == 2
    assert list(failures) == ["GET /boom"]
    assert "Server error" in failures["GET /boom"]


def _two_operation_app() -> Flask:
    app = Flask(__name__)
    answer = {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "two operations", "version": "1"},
        "paths": {"/boom": {"get": {"responses": answer}}, "/fine": {"get": {"responses": answer}}},
    }
    app.add_url_rule("/openapi.json", "document", lambda: document)
    app.add_url_rule("/boom", "boom", lambda: ({"error": "internal_error"}, 500))
    app.add_url_rule("/fine", "fine", lambda: {})
    return app
