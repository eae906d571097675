"""The participant's own profile."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import PARTICIPANT, Blueprint, current_principal
from api.extensions import db
from api.models import Participant
from api.schemas.participant import MeSchema, MeUpdateSchema
from api.services import participants as service

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The participant's own data")


@blp.route("")
class Me(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, MeSchema)
    def get(self) -> Participant | None:
        """Read my profile."""
        return current_principal().participant

    @blp.auth(PARTICIPANT)
    @blp.arguments(MeUpdateSchema)
    @blp.response(200, MeSchema)
    def patch(self, body: dict[str, Any]) -> Participant:
        """Change my time zone, language or reminder times."""
        principal = current_principal()
        participant = principal.participant
        assert participant is not None
        service.update_profile(principal.audit_actor(), participant, body)
        db.session.commit()
        return participant
