"""Diary entries: what the phone sends, what staff send, and how entries are shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from marshmallow import fields, pre_dump, validate

from api.models.diary import ENTRY_SOURCES
from api.schemas.base import REASON, BaseSchema
from api.services.actors import actor_labels

MAX_SYNC_ENTRIES = 100
NOTE = validate.Length(max=1000)


def _score(**kwargs: Any) -> fields.Integer:
    """A 0-4 severity: integers only (no "3", 3.0 or true)."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=4), **kwargs)


class DeviceDateTime(fields.AwareDateTime):
    """An instant shown with the UTC offset the device gave (stored as UTC + offset minutes).

    Loading refuses a time without an offset: "10:00" alone is ambiguous on a travelling
    phone.
    """

    def __init__(self, offset_attribute: str, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)
        self.offset_attribute = offset_attribute

    def _serialize(
        self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | float | None:
        if value is None:
            return None
        minutes = getattr(obj, self.offset_attribute, None) or 0
        local = value.astimezone(timezone(timedelta(minutes=minutes)) if minutes else UTC)
        return super()._serialize(local, attr, obj, **kwargs)


class _EntryFieldsSchema(BaseSchema):
    """The fields of SPEC §2 as they are shown, shared by entries and their versions."""

    diary_date = fields.Date(dump_only=True)
    abdominal_distension = fields.Integer(dump_only=True)
    decreased_appetite = fields.Integer(dump_only=True)
    debilitation = fields.Integer(dump_only=True)
    leg_edema = fields.Integer(dump_only=True)
    discomfort_grade = fields.Integer(dump_only=True)
    note = fields.String(dump_only=True, allow_none=True)
    recorded_at = DeviceDateTime("recorded_offset_minutes", dump_only=True)
    source = fields.String(dump_only=True, metadata={"enum": list(ENTRY_SOURCES)})

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Each field by attribute: an entry is an ORM object or a Core row, and a row's
        `[]` takes positions only (marshmallow tries `[]` first, raising for every field)."""
        return getattr(obj, attr, default)


class DiaryEntrySchema(_EntryFieldsSchema):
    """An entry as it stands now (the participant's and the staff's read)."""

    id = fields.Integer(dump_only=True)
    participant_id = fields.Integer(dump_only=True)
    client_entry_id = fields.UUID(dump_only=True)
    timezone = fields.String(dump_only=True, metadata={"description": "The participant's zone"})
    received_at = fields.AwareDateTime(dump_only=True, metadata={"description": "Server, UTC"})
    late = fields.Boolean(dump_only=True)
    version = fields.Integer(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class ActorSchema(BaseSchema):
    type = fields.String(attribute="actor_type", dump_only=True)
    id = fields.Integer(attribute="actor_id", dump_only=True)


class DiaryEntryVersionSchema(_EntryFieldsSchema):
    """One stored state of an entry: its values, who made it, when (server UTC) and why."""

    version = fields.Integer(dump_only=True)
    actor = fields.Function(
        lambda v: {"type": v.actor_type, "id": v.actor_id},
        dump_only=True,
        metadata={"type": "object", "description": "{type: participant|staff, id}"},
    )
    actor_label = fields.Function(
        lambda v: getattr(v, "actor_label", None),
        dump_only=True,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "Who, readable: a staff member's e-mail or the participant's study code",
        },
    )
    at = fields.AwareDateTime(dump_only=True)
    reason = fields.String(dump_only=True, allow_none=True)


class StaffDiaryEntrySchema(DiaryEntrySchema):
    """The staff view: who entered it and every version, oldest first."""

    created_by_staff_id = fields.Integer(dump_only=True, allow_none=True)
    versions = fields.List(fields.Nested(DiaryEntryVersionSchema), dump_only=True)

    @pre_dump(pass_collection=True)
    def _label_actors(self, data: Any, many: bool, **kwargs: Any) -> Any:
        """Name every version's actor for the page at once (one query per actor kind)."""
        versions = [v for entry in (data if many else [data]) for v in entry.versions]
        labels = actor_labels((v.actor_type, v.actor_id) for v in versions)
        for version in versions:
            version.actor_label = labels.get((version.actor_type, version.actor_id))
        return data


class DiaryEntryCreateSchema(BaseSchema):
    """What the phone sends for one diary day."""

    client_entry_id = fields.UUID(required=True, metadata={"description": "Idempotency key"})
    diary_date = fields.Date(required=True)
    abdominal_distension = _score(required=True)
    decreased_appetite = _score(required=True)
    debilitation = _score(required=True)
    leg_edema = _score(required=True)
    discomfort_grade = _score(required=True)
    note = fields.String(validate=NOTE, allow_none=True)
    recorded_at = fields.AwareDateTime(
        format="iso", required=True, metadata={"description": "Device time, with its offset"}
    )


class StaffDiaryEntryCreateSchema(DiaryEntryCreateSchema):
    """An entry made by the site on the participant's behalf (e.g. from the paper back-up)."""

    client_entry_id = fields.UUID(metadata={"description": "Optional idempotency key"})
    recorded_at = fields.AwareDateTime(
        format="iso", metadata={"description": "When the participant filled it in, if known"}
    )
    reason = fields.String(required=True, validate=REASON)


class _ChangesSchema(BaseSchema):
    """Fields to change; none at all is a no-op answered with the entry as it stands."""

    abdominal_distension = _score()
    decreased_appetite = _score()
    debilitation = _score()
    leg_edema = _score()
    discomfort_grade = _score()
    note = fields.String(validate=NOTE, allow_none=True)


class DiaryEntryUpdateSchema(_ChangesSchema):
    """A participant's correction of today's entry."""

    recorded_at = fields.AwareDateTime(
        format="iso", metadata={"description": "Device time of the correction"}
    )


class StaffDiaryEntryUpdateSchema(_ChangesSchema):
    """A site's amendment (data-change request): any field of the entry, with a reason."""

    diary_date = fields.Date()
    reason = fields.String(required=True, validate=REASON)


class DiaryEntryQuerySchema(BaseSchema):
    """`from`/`to`: inclusive diary dates (a `from` after `to` is an empty range)."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()


class _SyncItem(fields.Raw):
    """Any JSON value, null included: Raw, not Nested, so a bad item is that item's
    `rejected` result rather than a 422 for the whole batch (see `services.diary.sync`).
    Documented as DiaryEntryCreate, which is what a good item is."""

    def deserialize(
        self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any
    ) -> Any:
        if value is None:
            return None
        return super().deserialize(value, attr, data, **kwargs)


class DiarySyncSchema(BaseSchema):
    """The phone's offline queue; each item is validated on its own (see `DiarySyncItem`)."""

    entries = fields.List(
        _SyncItem(metadata={"allOf": [{"$ref": "#/components/schemas/DiaryEntryCreate"}]}),
        required=True,
        validate=validate.Length(max=MAX_SYNC_ENTRIES),
        metadata={"description": f"At most {MAX_SYNC_ENTRIES} entries (DiaryEntryCreate)"},
    )


SYNC_STATUSES = ("created", "replayed", "conflict", "rejected")


class _AlreadyDumped(fields.Nested):
    """An entry dumped when it was written (sync commits item by item): passed through."""

    # marshmallow's Nested renames Field's first parameter: no name satisfies both bases.
    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return value


class DiarySyncResultSchema(BaseSchema):
    index = fields.Integer(dump_only=True, metadata={"description": "Position in `entries`"})
    client_entry_id = fields.String(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True, metadata={"enum": list(SYNC_STATUSES)})
    entry = _AlreadyDumped(DiaryEntrySchema, dump_only=True, allow_none=True)
    error = fields.String(dump_only=True, allow_none=True)
    errors = fields.Dict(dump_only=True, allow_none=True)
    existing_entry_id = fields.Integer(dump_only=True, allow_none=True)


class DiarySyncResponseSchema(BaseSchema):
    results = fields.List(fields.Nested(DiarySyncResultSchema), dump_only=True)
