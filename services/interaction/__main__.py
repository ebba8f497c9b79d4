"""Runs one instance of the interaction service: ``python -m services.interaction``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.interaction.app:interaction")
