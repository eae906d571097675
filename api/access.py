"""Access rules in one place: what each principal may see.

Anything outside the caller's sites answers 404, never 403, so study codes and ids
cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import Row, Select, select

from api.auth import Principal
from api.errors import Forbidden, NotFound
from api.extensions import db
from api.models import Alert, Participant, Site
from api.services.alerts import alerts_query

# The staff roles that change study data (at their sites; admins everywhere).
WRITERS = ("coordinator", "admin")


def visible_sites(principal: Principal) -> Select[Site]:
    stmt = select(Site).order_by(Site.code)
    if principal.site_ids is not None:
        stmt = stmt.where(Site.id.in_(principal.site_ids))
    return stmt


def site_for_code(principal: Principal, code: str, *, field: str = "site") -> Site:
    """The site named by `code` if the caller may see it; 404 otherwise.

    The answer is the same for a site that does not exist and one outside the caller's
    sites, and does not echo the code: nothing tells them apart.
    """
    site = db.session.scalar(select(Site).where(Site.code == code))
    if site is None or not principal.may_see_site(site.id):
        raise NotFound("No such site.", error="site_not_found", errors={field: ["Unknown site."]})
    return site


def site_ids_in_scope(principal: Principal, code: str | None) -> list[int]:
    """The sites a report or list covers: the one named (404 if not the caller's), else
    every site the caller may see."""
    if code is not None:
        return [site_for_code(principal, code).id]
    return list(db.session.scalars(visible_sites(principal).with_only_columns(Site.id)))


def visible_participants(principal: Principal, site: str | None = None) -> Select[Participant]:
    """The participants the caller may see, at the site named by `site` when given.

    A site outside the caller's sites (or none such) is a 404, as for every report, so a
    list filtered by site cannot tell another site's code from an unknown one.
    """
    stmt = select(Participant)
    if principal.kind == "participant":
        return stmt.where(Participant.id == principal.id)
    if site is not None:
        return stmt.where(Participant.site_id == site_for_code(principal, site).id)
    if principal.site_ids is not None:
        stmt = stmt.where(Participant.site_id.in_(principal.site_ids))
    return stmt


def participant_for(principal: Principal, participant_id: int) -> Participant:
    """The participant if the caller may see them; 404 otherwise."""
    participant = db.session.get(Participant, participant_id)
    if participant is None or not _may_see(principal, participant):
        raise NotFound("No such participant.", error="participant_not_found")
    return participant


def _may_see(principal: Principal, participant: Participant) -> bool:
    if principal.kind == "participant":
        return participant.id == principal.id
    return principal.may_see_site(participant.site_id)


def participant_for_writing(principal: Principal, participant_id: int) -> Participant:
    """The participant if the caller may change their data: 404 outside the caller's
    sites, 403 for monitors and participants."""
    participant = participant_for(principal, participant_id)
    require_site_writer(principal, participant.site_id)
    return participant


def require_site_writer(principal: Principal, site_id: int) -> None:
    """Coordinators write only at their sites; admins everywhere; monitors never."""
    if principal.kind != "staff" or principal.role not in WRITERS:
        raise Forbidden("Your role may not change study data.", error="forbidden_role")
    if not principal.may_see_site(site_id):
        raise NotFound("No such participant.", error="participant_not_found")


def alert_for(principal: Principal, alert_id: int) -> Row[Alert, str, str]:
    """The alert with its participant's study code and site code if the caller may see
    its site; 404 otherwise."""
    site_ids = None if principal.site_ids is None else list(principal.site_ids)
    row: Row[Alert, str, str] | None = db.session.execute(
        alerts_query(site_ids).where(Alert.id == alert_id)
    ).first()
    if row is None or not principal.may_see_site(row[0].site_id):
        raise NotFound("No such alert.", error="alert_not_found")
    return row
