"""Adapters: one per external system, translating to and from the contracts."""
