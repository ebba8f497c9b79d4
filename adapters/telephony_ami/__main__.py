"""Runs the ami telephony adapter: ``python -m adapters.telephony_ami`` (HTTP on ``TROUPE_HTTP_PORT``)."""

from adapters.calls import run_telephony_adapter
from adapters.telephony_ami.app import create_app

if __name__ == "__main__":
    run_telephony_adapter("telephony_ami", create_app, default_port=8082)
