"""Fuzz every operation of the OpenAPI document as each role (schemathesis).

Checks: no 5xx, every response conforms to its documented schema, status code, headers
and content type. A bounded run is part of the test suite; `FUZZ_EXAMPLES` raises the
number of generated cases per operation and role for a long run (see README).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.helpers import Factory

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
ROLES = ("participant", "coordinator", "monitor", "admin")


def _token(factory: Factory, role: str) -> str:
    """A token of the role; the coordinator's site (BJ302) holds a participant."""
    participant = factory.participant(site="BJ302")
    if role == "participant":
        return factory.token(participant)
    return factory.token(factory.staff(role, sites=("BJ302",) if role == "coordinator" else ()))


def _fuzz_operation(operation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers)

    run()


@pytest.mark.parametrize("role", ROLES)
def test_contract(app, factory: Factory, role: str):
    contract = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {_token(factory, role)}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in contract.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz_operation(operation, headers)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert operations > 10
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
