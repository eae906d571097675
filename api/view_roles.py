"""The roles a view admits, kept on the view function for the access-matrix test and console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# A plain function attribute: `functools.wraps` copies it onto the wrappers stacked above.
ATTRIBUTE = "_allowed_roles"


def admit(view: F, roles: tuple[str, ...]) -> F:
    """Record on `view` the roles it admits ("anyone": no token needed); returns `view`."""
    setattr(view, ATTRIBUTE, roles)
    return view


def admitted(view: object) -> tuple[str, ...] | None:
    """The roles recorded on `view` by `admit`, or None for a view that recorded none."""
    roles: tuple[str, ...] | None = getattr(view, ATTRIBUTE, None)
    return roles
