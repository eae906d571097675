"""The contract fuzz's seed: fresh each run, printed, and `FUZZ_SEED=<n>` replays a run."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping

import pytest

SEED_BITS = 32


class BadSeed(ValueError):
    """FUZZ_SEED is set to something that is not a non-negative integer."""


def run_seed(environ: Mapping[str, str] = os.environ) -> int:
    """`FUZZ_SEED` when set (to reproduce a run), else a random one.

    A fixed seed would fuzz the same few cases on every run for ever; a fresh one covers
    new ground each time, and printing it keeps a failure reproducible.
    """
    raw = environ.get("FUZZ_SEED", "").strip()
    if not raw:
        return secrets.randbits(SEED_BITS)
    try:
        value = int(raw)
    except ValueError:
        raise BadSeed(f"FUZZ_SEED must be a non-negative integer, not {raw!r}") from None
    if value < 0:
        raise BadSeed(f"FUZZ_SEED must be a non-negative integer, not {raw!r}")
    return value


def derived_seed(seed: int, *parts: str) -> int:
    """A seed per (run, role, operation): each role and operation draws its own cases.

    Stable across processes (unlike `hash()`, which Python salts per process).
    """
    text = "\x1f".join([str(seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def announce(config: pytest.Config, what: str, seed: int, examples: int) -> None:
    """Print the run's seed on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"{what}: FUZZ_SEED={seed} ({examples} draws per case)")
