"""Pagination of SQLAlchemy `select()` statements for `@blp.paginate`."""

from __future__ import annotations

from typing import Any

from flask_smorest import Page
from sqlalchemy import Select, func, select

from api.extensions import db
from api.models.base import INTEGER_MAX


class SelectPage(Page):
    """A page of a `Select`: counted in SQL, sliced with LIMIT/OFFSET."""

    collection: Select[Any]

    @property
    def items(self) -> list[Any]:
        # No table holds more rows than an id can count: a page starting past that is empty
        # without asking the database (whose OFFSET is 64-bit: a larger one is an error).
        if self.page_params.first_item > INTEGER_MAX:
            return []
        stmt = self.collection.limit(self.page_params.page_size).offset(self.page_params.first_item)
        return self.fetch(stmt)

    def fetch(self, stmt: Select[Any]) -> list[Any]:
        """Run the page's statement; override to shape rows of several columns."""
        return list(db.session.scalars(stmt))

    @property
    def item_count(self) -> int:
        counted = select(func.count()).select_from(self.collection.order_by(None).subquery())
        return db.session.scalar(counted) or 0
