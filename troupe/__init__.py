"""Troupe: the runtime kit every Troupe service, adapter and tool is built with.

A service is declared with ``Service`` and its decorators; handlers raise
``Rejected`` to refuse a command, return the new state (or ``Emit``) to change an
entity, and return ``Command``s to ask other services for changes.
"""

from troupe.service.declaration import (
    UNCHANGED,
    Command,
    CommandContext,
    Emit,
    EventContext,
    Rejected,
    Service,
)

__all__ = ["UNCHANGED", "Command", "CommandContext", "Emit", "EventContext", "Rejected", "Service"]
