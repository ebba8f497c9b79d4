"""Adapter for telephony platforms that post JSON webhooks (call started,
answered, ended)."""
