"""The sidecar: JWT and role checks in front of every externally reachable service,
and the business audit written to ``audit.events``. See docs/sidecar.md."""

from troupe.compiled import select_build

select_build()
