"""Retry backoff, and the generated contract code being current."""

from __future__ import annotations

from troupe.contracts_build import stale_files
from troupe.service.processor import RetryPolicy


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(attempts=5, first_backoff=0.1, max_backoff=0.3)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]


def test_generated_contract_code_is_current() -> None:
    assert stale_files() == []
