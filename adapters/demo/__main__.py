"""Plays the outside world for the local run: ``python -m adapters.demo``.

``troupe up`` starts it last, with the telephony adapters' addresses in
``TROUPE_URL_TELEPHONY_WEBHOOK`` and ``TROUPE_URL_TELEPHONY_AMI``;
``TROUPE_DEMO_CALLS_PER_SECOND`` sets the pace (default 2).
"""

import os
import threading

from adapters.demo.traffic import Demo, Options
from adapters.serving import run_until_stopped, start_process
from troupe.settings import settings


def main() -> None:
    start_process("demo")
    options = Options(
        webhook_url=os.environ.get("TROUPE_URL_TELEPHONY_WEBHOOK", "http://127.0.0.1:8081"),
        ami_url=os.environ.get("TROUPE_URL_TELEPHONY_AMI", "http://127.0.0.1:8082"),
        calls_per_second=float(os.environ.get("TROUPE_DEMO_CALLS_PER_SECOND", "2")),
    )
    demo = Demo(settings().kafka, options)
    demo.prepare()
    traffic = threading.Thread(target=demo.run, name="demo", daemon=True)
    traffic.start()
    try:
        run_until_stopped(traffic.is_alive)
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
