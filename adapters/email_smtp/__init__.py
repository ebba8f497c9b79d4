"""Adapter for e-mail through SMTP: delivers e-mail notifications."""
