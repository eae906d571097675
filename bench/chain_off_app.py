"""The service with the audit hash chain switched off: the baseline of bench/audit_chain.py only."""

from api import create_app

app = create_app({"AUDIT_CHAIN": False})
