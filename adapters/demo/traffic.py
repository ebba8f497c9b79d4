"""Demo traffic for the local run: the outside world the layer serves.

Operators at three sites register and become available; two telephony platforms
(the webhook platform for msk and spb, the manager-interface PBX for ekb) post
calls to their adapters a few times a second, now and then delivering an event
twice; the platforms report an answer when a call reaches an operator's desk and
a hang-up a few seconds later (some callers hang up before anyone answers);
operators open tickets from some calls and resolve them, which reaches the
customers by SMS or e-mail.

Everything goes through the same doors as in production: calls through the
adapters' HTTP APIs, operators' actions as commands of the services.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.protobuf.message import Message

from adapters.telephony_ami.simulator import ManagerPbx
from adapters.telephony_webhook.simulator import WebhookPlatform, random_caller
from contracts.customer.v1 import customer_pb2 as customer_pb
from contracts.events.v1 import envelope_pb2
from contracts.interaction.v1 import interaction_pb2 as interaction_pb
from contracts.operator.v1 import operator_pb2 as operator_pb
from contracts.ticket.v1 import ticket_pb2 as ticket_pb
from troupe.bus import clients
from troupe.bus.topics import commands_topic, ensure_topics, events_topic
from troupe.service import records
from troupe.service.declaration import Command
from troupe.service.sender import CommandSender
from troupe.settings import KafkaSettings

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("6c1d7f3a-52b4-4c8e-9d0f-1a2b3c4d5e6f")
WEBHOOK_SITES = ("msk", "spb")
AMI_SITES = ("ekb",)
SITES = WEBHOOK_SITES + AMI_SITES
CATEGORIES = (
    ticket_pb.CATEGORY_ORDER,
    ticket_pb.CATEGORY_DELIVERY,
    ticket_pb.CATEGORY_RETURN,
    ticket_pb.CATEGORY_COMPLAINT,
)


@dataclass
class Options:
    webhook_url: str
    ami_url: str
    calls_per_second: float = 2.0
    operators_per_site: int = 8
    # Share of calls whose caller hangs up right away, and of events delivered twice.
    abandon_share: float = 0.08
    redeliver_share: float = 0.05
    ticket_share: float = 0.4


@dataclass
class Call:
    interaction_id: str
    site: str
    call_id: str
    abandoning: bool
    answered: bool = False
    ended: bool = False


@dataclass(order=True)
class _Due:
    at: float
    order: int
    action: Callable[[], Any] = field(compare=False)


class Scheduler:
    """Runs actions at their time, one at a time, on one thread."""

    def __init__(self) -> None:
        self._due: list[_Due] = []
        self._order = itertools.count()
        self._changed = threading.Condition()

    def after(self, seconds: float, action: Callable[[], Any]) -> None:
        with self._changed:
            heapq.heappush(self._due, _Due(time.monotonic() + seconds, next(self._order), action))
            self._changed.notify()

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            with self._changed:
                wait = self._due[0].at - time.monotonic() if self._due else 0.5
                if wait > 0:
                    self._changed.wait(min(wait, 0.5))
                    continue
                due = heapq.heappop(self._due)
            try:
                due.action()
            except Exception as error:  # the demo goes on; the log says what failed
                log.warning("demo action failed: %r", error)


def stable_id(*parts: str) -> str:
    """Command ids the same in every run, so a restart does not register twice."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


class Demo:
    def __init__(self, kafka: KafkaSettings, options: Options) -> None:
        self.kafka = kafka
        self.options = options
        self.sender = CommandSender(kafka, "demo")
        self.scheduler = Scheduler()
        self.stopping = threading.Event()
        self.calls: dict[str, Call] = {}
        self.webhook = httpx.Client(base_url=options.webhook_url, timeout=10)
        self.ami = httpx.Client(base_url=options.ami_url, timeout=10)
        self.platforms = {site: WebhookPlatform(self.webhook, site) for site in WEBHOOK_SITES}
        self.pbxs = {site: ManagerPbx(self.ami, site) for site in AMI_SITES}
        self.known_callers: list[str] = []
        self._lock = threading.Lock()

    # -- the setting ----------------------------------------------------------

    def prepare(self, timeout: float = 120.0) -> None:
        ensure_topics(
            self.kafka,
            [commands_topic(s) for s in ("operator", "customer", "ticket", "interaction")]
            + [events_topic("interaction")],
        )
        for client in (self.webhook, self.ami):
            wait_for_http(client, timeout)

    def staff(self) -> list[Future[str]]:
        """Operators at every site, all taking orders, some also returns; available."""
        sent = []
        for site in SITES:
            for n in range(1, self.options.operators_per_site + 1):
                operator_id = f"{site}-op{n:02d}"
                skills = ["orders", "returns"] if n % 2 else ["orders"]
                sent.append(
                    self.command(
                        operator_pb.RegisterOperatorRequest(
                            operator_id=operator_id, name=f"Operator {n} ({site})", site=site, skills=skills
                        ),
                        operator_id,
                        stable_id(operator_id, "register"),
                    )
                )
                sent.append(
                    self.command(
                        operator_pb.SetPresenceRequest(
                            operator_id=operator_id, presence=operator_pb.PRESENCE_AVAILABLE
                        ),
                        operator_id,
                        stable_id(operator_id, "available"),
                        who=operator_id,
                    )
                )
        return sent

    def customers(self) -> list[Future[str]]:
        """A few known customers (half of them prefer e-mail) who call again and again."""
        sent = []
        for n in range(1, 21):
            phone = f"+7999000{n:04d}"
            by_email = n % 2 == 0
            customer_id = stable_id("customer", phone)
            sent.append(
                self.command(
                    customer_pb.RegisterCustomerRequest(
                        customer_id=customer_id,
                        name=f"Customer {n}",
                        phone=phone,
                        email=f"customer{n}@mail.example" if by_email else "",
                        preferred_channel=customer_pb.CHANNEL_EMAIL if by_email else customer_pb.CHANNEL_SMS,
                    ),
                    customer_id,
                    stable_id(customer_id, "register"),
                )
            )
            self.known_callers.append(phone)
        return sent

    def command(
        self, payload: Message, entity_id: str, command_id: str, who: str = "demo", cause: str = ""
    ) -> Future[str]:
        """Sends an operator's (``who``) or the demo's command; Kafka has it once the future is done."""
        return self.sender.send_nowait(
            Command(entity_id, payload, command_id=command_id),
            actor=records.user(who) if who != "demo" else records.system("demo"),
            correlation_id=cause or None,
        )

    # -- calls ------------------------------------------------------------------

    def place_call(self) -> None:
        site = random.choice(SITES)
        caller = random.choice(self.known_callers) if random.random() < 0.5 else random_caller()
        line = "returns" if random.random() < 0.3 else "orders"
        abandoning = random.random() < self.options.abandon_share
        if site in self.pbxs:
            pbx = self.pbxs[site]
            call_id = pbx.unique_id()
            response = pbx.start(call_id, caller.replace("+7", "8"), line)
            interaction_id = response.json()["interaction_ids"][0]
        else:
            call_id = uuid.uuid4().hex[:10]
            response = self.platforms[site].start(call_id, caller, line)
            interaction_id = response.json()["interaction_id"]
            self.maybe_redeliver(site)
        response.raise_for_status()
        with self._lock:
            self.calls[interaction_id] = Call(interaction_id, site, call_id, abandoning)
        if abandoning:
            self.scheduler.after(random.uniform(0.05, 0.3), lambda: self.hang_up(interaction_id))

    def maybe_redeliver(self, site: str) -> None:
        if random.random() < self.options.redeliver_share:
            self.platforms[site].redeliver_last()

    def answer(self, interaction_id: str) -> None:
        call = self.calls.get(interaction_id)
        if call is None or call.ended or call.answered:
            return
        call.answered = True
        if call.site in self.pbxs:
            self.pbxs[call.site].answer(call.call_id)
        else:
            self.platforms[call.site].answer(call.call_id)
            self.maybe_redeliver(call.site)

    def hang_up(self, interaction_id: str) -> None:
        call = self.calls.get(interaction_id)
        if call is None or call.ended:
            return
        call.ended = True
        if call.site in self.pbxs:
            self.pbxs[call.site].end(call.call_id)
        else:
            self.platforms[call.site].end(call.call_id)
        with self._lock:
            self.calls.pop(interaction_id, None)

    # -- what operators do ---------------------------------------------------------

    def open_ticket(self, call: interaction_pb.Interaction) -> None:
        ticket_id = stable_id("ticket", call.interaction_id)
        self.command(
            ticket_pb.OpenTicketRequest(
                ticket_id=ticket_id,
                interaction_id=call.interaction_id,
                category=random.choice(CATEGORIES),
                priority=random.choice((ticket_pb.PRIORITY_NORMAL, ticket_pb.PRIORITY_HIGH)),
                subject=random.choice(("Where is my order?", "Wrong size delivered", "Points not credited")),
                opened_by=call.operator_id,
            ),
            ticket_id,
            stable_id(ticket_id, "open"),
            who=call.operator_id,
            cause=call.interaction_id,
        )
        self.scheduler.after(
            random.uniform(3, 8), lambda: self.resolve_ticket(ticket_id, call.operator_id, call.interaction_id)
        )

    def resolve_ticket(self, ticket_id: str, operator_id: str, interaction_id: str) -> None:
        self.command(
            ticket_pb.ResolveTicketRequest(ticket_id=ticket_id, resolution="Sorted out, thank you for waiting."),
            ticket_id,
            stable_id(ticket_id, "resolve"),
            who=operator_id,
            cause=interaction_id,
        )

    def on_event(self, event: envelope_pb2.Envelope) -> None:
        """The platforms and the operators react to what the layer did."""
        if event.entity_id not in self.calls:
            return
        if event.type == "InteractionAssigned":
            # The call rings at the operator's desk; they pick up.
            self.scheduler.after(random.uniform(0.3, 1.2), lambda: self.answer(event.entity_id))
        elif event.type == "InteractionAnswered":
            call = interaction_pb.Interaction.FromString(event.state.value)
            if call.customer_id and random.random() < self.options.ticket_share:
                self.scheduler.after(random.uniform(0.5, 1.5), lambda: self.open_ticket(call))
            self.scheduler.after(random.uniform(2, 6), lambda: self.hang_up(event.entity_id))

    def watch(self) -> None:
        consumer = clients.consumer(
            self.kafka, group_id=f"demo-{uuid.uuid4().hex[:8]}", **{"auto.offset.reset": "latest"}
        )
        consumer.subscribe([events_topic("interaction")])
        try:
            while not self.stopping.is_set():
                for message in clients.poll_batch(consumer, 500, 0.2):
                    if message.error() is None:
                        self.on_event(envelope_pb2.Envelope.FromString(message.value() or b""))
        finally:
            consumer.close()

    # -- running ------------------------------------------------------------------

    def run(self) -> None:
        threading.Thread(target=self.scheduler.run, args=(self.stopping,), daemon=True).start()
        watcher = threading.Thread(target=self.watch, daemon=True)
        watcher.start()
        for sent in [*self.staff(), *self.customers()]:
            sent.result(30)
        print(
            f"demo: {len(SITES) * self.options.operators_per_site} operators at {', '.join(SITES)};"
            f" calls at {self.options.calls_per_second}/s",
            flush=True,
        )
        # Let the operators' availability reach routing before the first call.
        self.stopping.wait(2)
        placed = 0
        started = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.place_call()
            except (httpx.HTTPError, KeyError, ValueError) as error:
                log.warning("call not placed: %r", error)
            placed += 1
            due = started + placed / self.options.calls_per_second
            self.stopping.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        self.sender.close()
        self.webhook.close()
        self.ami.close()


def wait_for_http(client: httpx.Client, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/openapi.json").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.base_url} did not answer within {timeout}s")
        time.sleep(0.2)
