"""Broker settings given to the cascade benchmark on its command line (pure logic)."""

from __future__ import annotations

import pytest

from bench.cascade.broker_config import describe, in_span, parse


def test_settings_are_read_as_key_value_pairs_and_shown_the_same_way() -> None:
    # given two settings as typed, one with spaces around its parts
    items = ["transaction.partition.verification.enable=false", " log.cleaner.threads = 2"]
    # when they are read
    settings = parse(items)
    # then each key has its value, and they are shown as given
    assert settings == {"transaction.partition.verification.enable": "false", "log.cleaner.threads": "2"}
    assert describe(settings) == "transaction.partition.verification.enable=false, log.cleaner.threads=2"


@pytest.mark.parametrize("item", ["log.cleaner.threads", "=2", "log.cleaner.threads=", " = "])
def test_a_setting_without_a_key_or_a_value_is_refused_by_name(item: str) -> None:
    # when a malformed setting is read, then the error names it
    with pytest.raises(ValueError, match="KEY=VALUE") as refused:
        parse([item])
    assert repr(item) in str(refused.value)


def test_spans_take_turns_so_that_a_drift_over_the_run_favours_neither_side() -> None:
    # when eight spans are given their settings
    with_settings = [number for number in range(8) if in_span(number)]
    # then half have them, in the order A B B A A B B A, whose positions balance out
    assert with_settings == [1, 2, 5, 6]
    assert sum(with_settings) == sum(number for number in range(8) if not in_span(number))
