"""Sites the caller may see."""

from __future__ import annotations

from flask.views import MethodView

from api.access import visible_sites
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.extensions import db
from api.models.site import Site
from api.schemas.site import SiteSchema

blp = Blueprint("sites", __name__, url_prefix="/api/v1/sites", description="Trial sites")


@blp.route("")
class Sites(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, SiteSchema(many=True))
    def get(self) -> list[Site]:
        """List the sites the caller may see."""
        return list(db.session.scalars(visible_sites(current_principal())))
