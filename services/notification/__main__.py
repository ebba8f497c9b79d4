"""Runs one instance of the notification service: ``python -m services.notification``."""

from troupe.service.main import run_service

if __name__ == "__main__":
    run_service("services.notification.app:notification")
