"""Adapter for the SMS gateway's HTTP API: delivers SMS notifications."""
