"""SIGTERM/SIGINT → graceful stop; a second signal → stop now."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from hauler.worker.runner import Worker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_signals(worker: Worker) -> Callable[[], None]:
    """Route the stop signals to ``worker.request_stop``; returns a function that undoes it."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, worker.request_stop, signal.Signals(sig).name)

    def remove() -> None:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)

    return remove
