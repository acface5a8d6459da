"""The worker fleet's process: lanes, claim loop, leases with fencing, pause/stop, signals."""

from hauler.worker.runner import Identity, Mode, Summary, Worker

__all__ = ["Identity", "Mode", "Summary", "Worker"]
