"""The data model: importing this package registers every table on `Base.metadata`."""

from api.models.audit import AuditEvent, ChainHead
from api.models.auth import ActivationCode, RefreshToken
from api.models.base import Base, UTCDateTime
from api.models.diary import DiaryEntry, DiaryEntryVersion, ExcusedDay
from api.models.notification import Device, Reminder, ReminderDelivery
from api.models.participant import Participant
from api.models.review import AdverseEvent, Alert
from api.models.schedule import ScheduleEvent
from api.models.site import Site
from api.models.staff import StaffUser, staff_sites

__all__ = [
    "ActivationCode",
    "AdverseEvent",
    "Alert",
    "AuditEvent",
    "Base",
    "ChainHead",
    "Device",
    "DiaryEntry",
    "DiaryEntryVersion",
    "ExcusedDay",
    "Participant",
    "RefreshToken",
    "Reminder",
    "ReminderDelivery",
    "ScheduleEvent",
    "Site",
    "StaffUser",
    "UTCDateTime",
    "staff_sites",
]
