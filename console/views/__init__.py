"""Console pages; importing this package registers their routes on the Blueprint."""

from console.views import (  # noqa: F401  # noqa: F401, E402
    account,
    alerts,
    audit,
    compliance,
    participant,
    participants,
    staff,
    today,
)
