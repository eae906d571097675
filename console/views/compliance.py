"""Compliance: per site the SPEC's figures, the daily on-time rate as a chart, the
per-participant table, the reminder funnel per kind, and the CSV export.

Everything comes from `api/services/` (the report the API answers, the figures module);
the export streams the same CSV as `GET /api/v1/exports/diary-entries.csv`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, render_template, request, url_for
from marshmallow import ValidationError

from api.access import site_ids_in_scope, visible_sites
from api.clock import utcnow
from api.extensions import db
from api.models import Site
from api.schemas.compliance import ComplianceQuerySchema
from api.services import exports as export_service
from api.services.compliance import compliance_report, local_day
from api.services.figures import daily_on_time_rates, reminder_funnel
from console import charts
from console.blueprint import bp
from console.i18n import translate
from console.security import console_zone, current_principal

CHART_DAYS = 60


def _query() -> dict[str, Any]:
    """The page's filters through the API's own query schema (bad dates are ignored)."""
    raw = {k: v for k, v in request.args.items() if k in ("site", "from", "to") and v}
    try:
        return ComplianceQuerySchema().load(raw)
    except ValidationError:
        return {"site": raw["site"]} if "site" in raw else {}


def _rate_chart(site: Site, site_ids: list[int], last: date) -> charts.Chart:
    now = utcnow()
    rows = daily_on_time_rates(site_ids, now, last - timedelta(days=CHART_DAYS - 1), last)
    from api.services.compliance import study_config

    return charts.rate_chart(
        title=translate("compliance.chart_title", site=site.code, days=CHART_DAYS),
        desc=translate("compliance.chart_desc", days=CHART_DAYS),
        days=[r.day for r in rows],
        rates=[r.rate for r in rows],
        rate_label=translate("compliance.on_time_rate"),
        day_header=translate("compliance.day"),
        threshold=study_config().compliance_threshold,
    )


def _funnels(site_ids: list[int]) -> list[charts.Chart]:
    out = []
    for row in reminder_funnel(site_ids):
        kind = translate(f"reminder_kind.{row.kind}")
        out.append(
            charts.funnel_chart(
                title=translate("compliance.funnel_title", kind=kind),
                desc=translate("compliance.funnel_desc"),
                stages=[
                    (translate("funnel.sent"), row.sent),
                    (translate("funnel.delivered"), row.delivered),
                    (translate("funnel.opened"), row.opened),
                    (translate("funnel.filled"), row.filled_within_3h),
                ],
                stage_header=translate("funnel.stage"),
                count_header=translate("funnel.count"),
                share_header=translate("funnel.share"),
            )
        )
    return out


@bp.get("/compliance")
def compliance():  # type: ignore[no-untyped-def]
    """The compliance report of the caller's sites (or the one chosen)."""
    principal = current_principal()
    query = _query()
    site_ids = site_ids_in_scope(principal, query.get("site"))
    now = utcnow()
    report = compliance_report(site_ids, now, from_=query.get("from_"), to=query.get("to"))
    sites = {s.id: s for s in db.session.scalars(visible_sites(principal))}
    in_scope = [sites[i] for i in site_ids if i in sites]
    yesterday = local_day(console_zone(), now) - timedelta(days=1)
    return render_template(
        "compliance.html",
        report=report,
        sites=list(sites.values()),
        filters={
            "site": query.get("site", ""),
            "from": query["from_"].isoformat() if query.get("from_") else "",
            "to": query["to"].isoformat() if query.get("to") else "",
        },
        rate_charts=[(s, _rate_chart(s, [s.id], yesterday)) for s in in_scope],
        funnels=_funnels(site_ids),
        csv_url=url_for(
            "console.diary_csv",
            **{k: v for k, v in request.args.items() if k in ("site", "from", "to") and v},
        ),
    )


@bp.get("/compliance/diary-entries.csv")
def diary_csv():  # type: ignore[no-untyped-def]
    """The diary export, as the API streams it, for the same site and days."""
    query = _query()
    site_ids = site_ids_in_scope(current_principal(), query.get("site"))
    stmt = export_service.export_query(site_ids, query.get("from_"), query.get("to"))
    db.session.close()
    response = Response(export_service.stream_csv(stmt, db.engine), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="diary-entries.csv"'
    return response
