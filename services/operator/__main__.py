"""Runs one instance of the operator service: ``python -m services.operator``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.operator.app:operator")
