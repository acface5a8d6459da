"""The worker tests' store keeps the wall clock: their workers (``hauler worker`` subprocesses,
in-process workers on the ``SystemClock``) keep real time, and the store must agree with them
(leases, retries falling due, stop requests). The fixtures: ``tests/fixtures/stores.py``."""

from tests.fixtures.stores import wall_clock as clock  # noqa: F401
