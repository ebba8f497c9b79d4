"""Runs one instance of the ticket service: ``python -m services.ticket``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.ticket.app:ticket")
