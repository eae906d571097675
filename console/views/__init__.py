"""Console pages; importing this package registers their routes on the Blueprint."""

from console.views import account, participant, participants, today  # noqa: F401
