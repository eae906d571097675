"""The trial's sites, created from the study configuration."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from api.models import Site
from api.study import StudyConfig


def ensure_sites(study: StudyConfig) -> int:
    """Create the configured sites that do not exist yet; returns how many were added.

    Safe when several processes start at once: a lost race is a unique violation, ignored
    (each insert has its own savepoint). The caller commits.
    """
    existing = set(db.session.scalars(select(Site.code)))
    added = 0
    for cfg in study.sites:
        if cfg.code in existing:
            continue
        site = Site(code=cfg.code, name=cfg.name, city=cfg.city, timezone=cfg.timezone)
        try:
            with db.session.begin_nested():
                db.session.add(site)
            added += 1
        except IntegrityError:
            pass  # another process made it first
    return added
