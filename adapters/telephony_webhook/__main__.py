"""Runs the webhook telephony adapter: ``python -m adapters.telephony_webhook`` (HTTP on ``TROUPE_HTTP_PORT``)."""

from adapters.calls import run_telephony_adapter
from adapters.telephony_webhook.app import create_app

if __name__ == "__main__":
    run_telephony_adapter("telephony_webhook", create_app, default_port=8081)
