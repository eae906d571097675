"""Date arithmetic in SQL that gives the same answers on PostgreSQL and SQLite.

PostgreSQL has a real `date` type (`date - date` is an integer, `date + n` a date,
`LEAST`/`GREATEST`); SQLite keeps ISO strings and has `julianday()`, `date(d, '+n days')`
and multi-argument `min()`/`max()`. Each helper here compiles to the idiom of the
dialect, so compliance and alerts are computed by the database on both, by one query.
Arguments must not be NULL (SQLite's `min()` would answer NULL where `LEAST` skips it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, literal_column


class least(FunctionElement[Any]):
    """The smallest of its (non-NULL) arguments."""

    inherit_cache = True


class greatest(FunctionElement[Any]):
    """The largest of its (non-NULL) arguments."""

    inherit_cache = True


class days_between(FunctionElement[int]):
    """`days_between(a, b)`: whole days from date `a` to date `b` (b - a)."""

    type = Integer()
    inherit_cache = True


class add_days(FunctionElement[Any]):
    """`add_days(d, n)`: the date `n` (an integer expression) days after `d`."""

    type = Date()
    inherit_cache = True


@compiles(least)
def _least_pg(element: least, compiler: Any, **kw: Any) -> str:
    return f"LEAST({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(greatest)
def _greatest_pg(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def _two(element: FunctionElement[Any], compiler: Any, **kw: Any) -> tuple[str, str]:
    first, second = list(element.clauses)
    return compiler.process(first, **kw), compiler.process(second, **kw)


@compiles(days_between)
def _days_between_pg(element: days_between, compiler: Any, **kw: Any) -> str:
    a, b = _two(element, compiler, **kw)
    return f"(CAST({b} AS DATE) - CAST({a} AS DATE))"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    a, b = _two(element, compiler, **kw)
    return f"CAST(round(julianday({b}) - julianday({a})) AS INTEGER)"


@compiles(add_days)
def _add_days_pg(element: add_days, compiler: Any, **kw: Any) -> str:
    d, n = _two(element, compiler, **kw)
    return f"(CAST({d} AS DATE) + CAST({n} AS INTEGER))"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: Any, **kw: Any) -> str:
    d, n = _two(element, compiler, **kw)
    return f"date({d}, CAST({n} AS TEXT) || ' days')"


class add_months(FunctionElement[Any]):
    """`add_months(d, n)` for a constant `n`: calendar months, clamped to month end.

    The same rule as `api.services.schedule.add_months` (Jan 31 + 1 month = Feb 28/29):
    PostgreSQL's interval arithmetic clamps; SQLite's `'+n months'` overflows into the
    next month, so it is capped by the last day of the target month.
    """

    type = Date()
    inherit_cache = True

    def __init__(self, value: ColumnElement[Any], months: int) -> None:
        # A literal clause, so the statement cache keys on the number of months too.
        super().__init__(value, literal_column(str(int(months))))


@compiles(add_months)
def _add_months_pg(element: add_months, compiler: Any, **kw: Any) -> str:
    d, n = _two(element, compiler, **kw)
    return f"CAST(CAST({d} AS DATE) + INTERVAL '{int(n)} months' AS DATE)"


@compiles(add_months, "sqlite")
def _add_months_sqlite(element: add_months, compiler: Any, **kw: Any) -> str:
    d, months = _two(element, compiler, **kw)
    n = int(months)
    return (
        f"min(date({d}, '+{n} months'), date({d}, 'start of month', '+{n + 1} months', '-1 day'))"
    )


class months_since(FunctionElement[int]):
    """`months_since(start, day)`: the study month of `day` (0 from `start` on), by the
    calendar rule of `add_months` (clamped to month end): month m begins on
    `add_months(start, m)`, so Feb 28 is month 1 of an enrolment on Jan 31."""

    type = Integer()
    inherit_cache = True


@compiles(months_since)
def _months_since_pg(element: months_since, compiler: Any, **kw: Any) -> str:
    s, d = _two(element, compiler, **kw)
    s, d = f"CAST({s} AS DATE)", f"CAST({d} AS DATE)"
    last = f"EXTRACT(DAY FROM date_trunc('month', {d}) + interval '1 month - 1 day')"
    return (
        f"(CAST((EXTRACT(YEAR FROM {d}) - EXTRACT(YEAR FROM {s})) * 12"
        f" + EXTRACT(MONTH FROM {d}) - EXTRACT(MONTH FROM {s}) AS INTEGER)"
        f" - CASE WHEN EXTRACT(DAY FROM {d}) < LEAST(EXTRACT(DAY FROM {s}), {last})"
        " THEN 1 ELSE 0 END)"
    )


@compiles(months_since, "sqlite")
def _months_since_sqlite(element: months_since, compiler: Any, **kw: Any) -> str:
    s, d = _two(element, compiler, **kw)

    def part(fmt: str, value: str, *mods: str) -> str:
        extra = "".join(f", '{m}'" for m in mods)
        return f"CAST(strftime('{fmt}', {value}{extra}) AS INTEGER)"

    last = part("%d", d, "start of month", "+1 month", "-1 day")
    return (
        f"(({part('%Y', d)} - {part('%Y', s)}) * 12 + {part('%m', d)} - {part('%m', s)}"
        f" - CASE WHEN {part('%d', d)} < min({part('%d', s)}, {last}) THEN 1 ELSE 0 END)"
    )


class utc_text(FunctionElement[str]):
    """`utc_text(instant)`: an instant column as ISO 8601 UTC text (`2026-02-20T13:01:00Z`),
    made by the database so an export row needs no formatting in Python."""

    type = String()
    inherit_cache = True


@compiles(utc_text)
def _utc_text_pg(element: utc_text, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"""to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', {compiler.process(element.clauses, **kw)})"
