"""Runs one instance of the customer service: ``python -m services.customer``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.customer.app:customer")
