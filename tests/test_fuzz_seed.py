"""The contract fuzz's seeding: random unless FUZZ_SEED says otherwise; one seed replays."""

from __future__ import annotations

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from tests.fuzz_seed import SEED_BITS, BadSeed, derived_seed, run_seed


def test_fuzz_seed_is_taken_from_the_environment():
    assert run_seed({"FUZZ_SEED": "12345"}) == 12345
    assert run_seed({"FUZZ_SEED": " 7 "}) == 7
    assert run_seed({"FUZZ_SEED": "0"}) == 0


def test_without_fuzz_seed_each_run_draws_another():
    seeds = {run_seed({}) for _ in range(20)} | {run_seed({"FUZZ_SEED": ""})}
    assert len(seeds) > 15
    assert all(0 <= s < 2**SEED_BITS for s in seeds)


@pytest.mark.parametrize("raw", ["abc", "1.5", "-3", "0x10"])
def test_a_seed_that_is_not_a_count_is_refused(raw):
    with pytest.raises(BadSeed, match="FUZZ_SEED"):
        run_seed({"FUZZ_SEED": raw})


def test_derived_seeds_are_stable_and_differ_by_role_and_operation():
    first = derived_seed(42, "admin", "GET /api/v1/alerts")
    assert first == derived_seed(42, "admin", "GET /api/v1/alerts")
    others = {
        derived_seed(43, "admin", "GET /api/v1/alerts"),
        derived_seed(42, "monitor", "GET /api/v1/alerts"),
        derived_seed(42, "admin", "GET /api/v1/sites"),
        derived_seed(42, "adminGET /api/v1/alerts"),
    }
    assert first not in others and len(others) == 4


def _drawn(run: int) -> list[int]:
    """The values hypothesis draws under one derived seed, as the fuzz draws its cases."""
    values: list[int] = []

    @seed(derived_seed(run, "participant", "POST /api/v1/me/diary-entries"))
    @settings(max_examples=10, database=None, derandomize=False)
    @given(st.integers())
    def draw(value: int) -> None:
        values.append(value)

    draw()
    return values


def test_the_same_seed_replays_the_same_cases_and_another_seed_does_not():
    assert _drawn(1) == _drawn(1)
    assert _drawn(1) != _drawn(2)
