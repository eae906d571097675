"""The protocol's symptom outcome: the diary by arm and study month (0 to 36).

Computed by the database in one statement on both databases:

1. per participant and study month (`months_since` enrolment, the calendar rule of
   the schedule): the mean of each score over the participant's diary days, the number
   of days, and the number of days with discomfort grade >= 3;
2. per arm and month, over the participants contributing: the mean of those monthly
   means (each participant weighs the same, however diligent a diarist), the sum of
   their squares (so SD needs no `stddev`, which SQLite lacks), and the same for the
   change from each participant's own month-0 mean (participants with a month-0 mean);
   the share of grade >= 3 days is pooled over the arm's diary days of the month.

Python then turns sums into SD = sqrt((Σx² - n·mean²)/(n - 1)) and the 95 % confidence
interval mean ± t(0.975, n - 1)·SD/√n (Student's t; one row per arm and month, at most
74 rows, so this part is not data-sized).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, cast, func, select

from api.extensions import db
from api.models import DiaryEntry, Participant
from api.services.sqldates import months_since
from api.services.standards import ITEMS

P = Participant.__table__
D = DiaryEntry.__table__
LAST_MONTH = 36
HIGH_GRADE = 3
FIELDS = tuple(item.field for item in ITEMS)

# Student's t, two-sided 95 % (0.975 quantile), for 1 to 30 degrees of freedom.
T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
Z_975 = 1.959964


def t_975(df: int) -> float:
    """The 0.975 quantile of Student's t: the table to 30, then the Cornish-Fisher
    expansion around the normal quantile (within 1e-4 beyond 30)."""
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def report_select(site_ids: list[int], arm: str | None) -> Select[Any]:
    """The aggregate statement: one row per arm and study month."""
    month = months_since(P.c.enrolled_on, D.c.diary_date)
    where = [P.c.site_id.in_(site_ids), D.c.diary_date >= P.c.enrolled_on]
    if arm:
        where.append(P.c.arm == arm)
    per_month = (
        select(
            P.c.id.label("pid"),
            P.c.arm.label("arm"),
            month.label("month"),
            *(func.avg(cast(D.c[f], Float)).label(f) for f in FIELDS),
            func.count().label("days"),
            func.count().filter(D.c.discomfort_grade >= HIGH_GRADE).label("high"),
        )
        .select_from(D.join(P, P.c.id == D.c.participant_id))
        .where(*where)
        .group_by(P.c.id, P.c.arm, month)
        .cte("per_month")
    )
    pm = per_month.c
    base = (
        select(pm.pid, *(pm[f].label(f) for f in FIELDS)).where(pm.month == 0).subquery("baseline")
    )
    columns: list[Any] = [pm.arm, pm.month, func.count().label("n")]
    for f in FIELDS:
        change = pm[f] - base.c[f]
        columns += [
            func.avg(pm[f]).label(f"{f}_mean"),
            func.sum(pm[f] * pm[f]).label(f"{f}_sumsq"),
            func.count(base.c[f]).label(f"{f}_cn"),
            func.avg(change).label(f"{f}_cmean"),
            func.sum(change * change).label(f"{f}_csumsq"),
        ]
    columns += [func.sum(pm.days).label("days"), func.sum(pm.high).label("high")]
    return (
        select(*columns)
        .select_from(per_month.outerjoin(base, base.c.pid == pm.pid))
        .where(pm.month >= 0, pm.month <= LAST_MONTH)
        .group_by(pm.arm, pm.month)
        .order_by(pm.arm, pm.month)
    )


@dataclass
class Estimate:
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None


def estimate(n: int, mean: Any, sumsq: Any) -> Estimate:
    """Mean, SD and 95 % CI from n, the mean and the sum of squares."""
    if not n or mean is None:
        return Estimate(n or 0, None, None, None, None)
    mean = float(mean)
    if n < 2:
        return Estimate(n, round(mean, 4), None, None, None)
    variance = max(0.0, (float(sumsq) - n * mean * mean) / (n - 1))
    sd = math.sqrt(variance)
    half = t_975(n - 1) * sd / math.sqrt(n)
    return Estimate(n, round(mean, 4), round(sd, 4), round(mean - half, 4), round(mean + half, 4))


def symptom_report(site_ids: list[int], arm: str | None) -> list[dict[str, Any]]:
    rows = db.session.execute(report_select(site_ids, arm)).mappings()
    out = []
    for row in rows:
        symptoms = {}
        for f in FIELDS:
            symptoms[f] = {
                **estimate(row["n"], row[f"{f}_mean"], row[f"{f}_sumsq"]).__dict__,
                "change": estimate(row[f"{f}_cn"], row[f"{f}_cmean"], row[f"{f}_csumsq"]).__dict__,
            }
        days = int(row["days"] or 0)
        out.append(
            {
                "arm": row["arm"],
                "month": int(row["month"]),
                "participants": int(row["n"]),
                "diary_days": days,
                "share_grade_3_or_more": round(int(row["high"] or 0) / days, 4) if days else None,
                "symptoms": symptoms,
            }
        )
    return out


CSV_COLUMNS = (
    "arm",
    "month",
    "participants",
    "diary_days",
    "share_grade_3_or_more",
    *(
        f"{f}_{part}"
        for f in FIELDS
        for part in (
            "mean", "sd", "ci_low", "ci_high", "change_n", "change_mean", "change_sd",
            "change_ci_low", "change_ci_high",
        )
    ),
)  # fmt: skip


def csv_rows(report: list[dict[str, Any]]) -> list[list[Any]]:
    """The report flattened to one CSV row per arm and month."""
    rows = []
    for r in report:
        row: list[Any] = [
            r["arm"], r["month"], r["participants"], r["diary_days"], r["share_grade_3_or_more"]
        ]  # fmt: skip
        for f in FIELDS:
            s, c = r["symptoms"][f], r["symptoms"][f]["change"]
            row += [s["mean"], s["sd"], s["ci_low"], s["ci_high"], c["n"], c["mean"], c["sd"],
                    c["ci_low"], c["ci_high"]]  # fmt: skip
        rows.append(["" if v is None else v for v in row])
    return rows
