"""Runs one instance of the routing service: ``python -m services.routing``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.routing.app:routing")
