"""Troupe: the runtime kit every Troupe service, adapter and tool is built with."""
