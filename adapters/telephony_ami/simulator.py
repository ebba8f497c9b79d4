"""A manager-interface PBX, simulated: it forwards ``Key: Value`` event blocks to
the adapter (with the noise a real PBX sends), can replay events, and can run
live traffic (``python -m adapters.telephony_ami.simulator``)."""

from __future__ import annotations

import argparse
import random
import time

import httpx


class ManagerPbx:
    def __init__(self, client: httpx.Client, site: str) -> None:
        self.client = client
        self.site = site
        self.sequence = 0
        self.sent: list[str] = []

    def unique_id(self) -> str:
        self.sequence += 1
        return f"{int(time.time())}.{self.sequence}"

    @staticmethod
    def block(**fields: str) -> str:
        fields.setdefault("Timestamp", f"{time.time():.6f}")
        return "".join(f"{key}: {value}\r\n" for key, value in fields.items()) + "\r\n"

    def forward(self, *blocks: str) -> httpx.Response:
        text = "".join(blocks)
        self.sent.append(text)
        return self.client.post(
            f"/sites/{self.site}/ami", content=text, headers={"content-type": "text/plain"}
        )

    def start(self, unique_id: str, caller: str, exten: str = "orders") -> httpx.Response:
        return self.forward(
            self.block(Event="Newchannel", Uniqueid=unique_id, CallerIDNum=caller, Exten=exten),
            self.block(Event="VarSet", Uniqueid=unique_id, Variable="QUEUE", Value=exten),
        )

    def answer(self, unique_id: str) -> httpx.Response:
        return self.forward(self.block(Event="BridgeEnter", Uniqueid=unique_id))

    def end(self, unique_id: str) -> httpx.Response:
        return self.forward(self.block(Event="Hangup", Uniqueid=unique_id, Cause="16"))

    def replay(self) -> httpx.Response:
        """After a reconnect a PBX sends what the adapter may already have seen."""
        return self.client.post(f"/sites/{self.site}/ami", content=self.sent[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated manager-interface PBX traffic")
    parser.add_argument("--url", default="http://127.0.0.1:8082")
    parser.add_argument("--sites", default="ekb")
    parser.add_argument("--calls-per-minute", type=float, default=20)
    parser.add_argument("--call-seconds", type=float, default=20)
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=10) as client:
        pbxs = {site: ManagerPbx(client, site) for site in args.sites.split(",")}
        active: list[tuple[float, ManagerPbx, str]] = []
        while True:
            pbx = random.choice(list(pbxs.values()))
            unique_id = pbx.unique_id()
            pbx.start(unique_id, f"89{random.randint(100000000, 999999999)}")
            active.append((time.monotonic() + args.call_seconds, pbx, unique_id))
            now = time.monotonic()
            for item in [a for a in active if a[0] <= now]:
                item[1].end(item[2])
                active.remove(item)
            time.sleep(60 / args.calls_per_minute)


if __name__ == "__main__":
    main()
