"""Refusals of well-formed requests by a rule of the trial."""

from __future__ import annotations

from api.errors import Conflict


class Refused(Conflict):
    """Input the OpenAPI schema accepts but a rule refuses in the current state (dates
    against enrolment or today, an event already done, a decision the alert needs): 409
    with the rule's own `error` code, naming the field like a validation error does.
    A 422 is kept for input the schema itself rejects."""

    def __init__(self, field: str, message: str, *, error: str) -> None:
        super().__init__(message, error=error, errors={field: [message]})
