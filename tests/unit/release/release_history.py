"""A scripted git history to release from: a tiny Troupe-shaped repository in a
temporary directory, with contracts, components and their event declarations."""

from __future__ import annotations

import argparse
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from troupe.release import commands

CUSTOMER_PROTO = """\
syntax = "proto3";

package contracts.customer.v1;

message Address {
  string city = 1;
  string street = 2;
}

// A customer of the retail chain.
message Customer {
  string customer_id = 1;
  string name = 2;
  repeated string phones = 3;
  Address address = 4;
%(extra)s}

service CustomerService {
  rpc GetCustomer(Customer) returns (Customer);
}
"""

TICKET_PROTO = """\
syntax = "proto3";

package contracts.ticket.v1;

message Ticket {
  string ticket_id = 1;
  string customer_id = 2;
  string subject = 3;
}
"""

CUSTOMER_EVENTS = """\
produces:
  - topic: customer.events
    message: contracts.customer.v1.Customer
    types: [CustomerRegistered, ContactChanged]
"""

TICKET_EVENTS = """\
produces:
  - topic: ticket.events
    message: contracts.ticket.v1.Ticket
    types: [TicketOpened]
consumes:
  - topic: customer.events
    types: [CustomerRegistered, ContactChanged]
    fields: [customer_id, name, address.city]
"""


def customer_proto(extra: str = "") -> str:
    return CUSTOMER_PROTO % {"extra": textwrap.indent(extra, "  ") if extra else ""}


@dataclass
class Result:
    code: int
    out: str
    err: str


class Scripted:
    """A git repository whose history a test writes commit by commit."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str], *, existing: bool = False) -> None:
        self.root = root
        self.capsys = capsys
        if existing:  # a copy of a scripted repository, already configured
            return
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        for key, value in (
            ("user.name", "Rita Releaser"),
            ("user.email", "rita@example.com"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ):
            self.git("config", key, value)

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True
        ).stdout

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def delete(self, path: str) -> None:
        (self.root / path).unlink()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("log", "-1", "--format=%h").strip()

    def last_change(self, path: str) -> str:
        return self.git("log", "-1", "--format=%h", "--", path).strip()

    def release(self, *argv: str) -> Result:
        """Runs ``troupe release <argv> --repo <root>``."""
        parser = argparse.ArgumentParser(prog="troupe")
        commands.add_commands(parser.add_subparsers(dest="command", required=True))
        self.capsys.readouterr()
        args = parser.parse_args(["release", *argv, "--repo", str(self.root)])
        code = args.handler(args)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def tags(self) -> list[str]:
        return self.git("tag", "--list").split()
