"""The data model: importing this package registers every table on `Base.metadata`."""

from api.models.adverse_events import AdverseEvent
from api.models.alerts import Alert
from api.models.audit import AuditEvent, ChainHead
from api.models.auth import ActivationCode, RefreshToken
from api.models.base import Base, UTCDateTime
from api.models.devices import Device
from api.models.diary import DiaryEntry, DiaryEntryVersion, ExcusedDay
from api.models.participant import Participant
from api.models.reminders import Reminder, ReminderDelivery
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
