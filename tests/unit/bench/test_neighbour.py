"""The busy neighbour's split of cores into burners (pure logic)."""

from __future__ import annotations

import pytest

from bench.cascade.neighbour import shares


def test_cores_are_split_evenly_over_as_few_burners_as_can_hold_them() -> None:
    assert shares(0.5) == [0.5]
    assert shares(1.0) == [1.0]
    assert shares(1.5) == [0.75, 0.75]


def test_no_cores_need_no_burner() -> None:
    assert shares(0) == []


def test_a_negative_number_of_cores_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot take -1"):
        shares(-1)
