"""hauler.observe: a recording observer sees a real worker's jobs start, retry and finish, and
its bytes; the fan-out tells every observer and survives one that raises."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from hauler.local.batch import Batch, BatchOptions
from hauler.models import JobSpec
from hauler.observe import Finish, NullObserver, Observer, Observers
from hauler.redact import Redactor
from hauler.store import Store
from hauler.transfer.engine import Engine
from hauler.worker.modes import Mode
from hauler.worker.runner import Identity, Worker
from tests.fixtures.reporters import QuietReporter
from tests.fixtures.stores import wall_clock as clock  # noqa: F401  (the worker keeps real time)
from tests.transfer.origin import Fault, Origin
from tests.worker.fleet import (
    RUN_TIMEOUT_S,
    add_urls,
    pipeline_for,
    transfer_settings,
    worker_settings,
)

KIB = 1024


class Recorder:
    """Every report, in order, as a tuple."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.nbytes = 0

    def job_started(self, job_id: str, url: str) -> None:
        self.events.append(("started", job_id, url))

    def job_finished(
        self, job_id: str, finish: Finish, error_class: str | None, nbytes: int
    ) -> None:
        self.events.append(("finished", job_id, finish, error_class, nbytes))

    def bytes_transferred(self, nbytes: int) -> None:
        self.nbytes += nbytes

    def retried(self, job_id: str, error_class: str, delay_s: float) -> None:
        self.events.append(("retried", job_id, error_class, delay_s > 0))

    def job_handled(
        self, job_id: str | None, kind: str, error_class: str | None, elapsed_s: float
    ) -> None:
        self.events.append(("handled", job_id, kind, error_class))

    def pool_event(self, kind: str, resource: str) -> None:
        self.events.append(("pool", kind, resource))


async def test_a_worker_reports_starts_retries_finishes_and_bytes(
    store: Store, origin: Origin, tmp_path: Path
) -> None:
    origin.add("flaky.bin", 100 * KIB, faults={1: Fault(status=500)})
    origin.add("ok.bin", 30 * KIB)
    url = origin.url("ok.bin").replace("://", "://user:hunter2@")
    flaky, ok, missing = await add_urls(
        store, [origin.url("flaky.bin"), url, origin.url("missing.bin")]
    )
    recorder = Recorder()
    async with Engine(transfer_settings()) as engine:
        worker = Worker(
            store,
            pipeline_for(engine, tmp_path, recorder),
            worker_settings(),
            mode=Mode.DRAIN,
            identity=Identity("w-obs", "node-1", 1),
            observer=recorder,
        )
        async with asyncio.timeout(RUN_TIMEOUT_S):
            summary = await worker.run()
    assert (summary.done, summary.retried, summary.failed) == (2, 1, 1)
    finished = {(e[1], e[2], e[3]) for e in recorder.events if e[0] == "finished"}
    assert finished == {
        (flaky, Finish.RETRYING, "transient"),
        (flaky, Finish.DONE, None),
        (ok, Finish.DONE, None),
        (missing, Finish.FAILED, "not_found"),
    }
    assert ("retried", flaky, "transient", True) in recorder.events
    started = [e for e in recorder.events if e[0] == "started"]
    assert sorted(e[1] for e in started) == sorted([flaky, flaky, ok, missing])
    assert all("hunter2" not in str(e) for e in recorder.events)  # URLs masked
    by_job = {e[1]: e for e in recorder.events if e[0] == "finished" and e[2] is Finish.DONE}
    assert by_job[ok][4] == 30 * KIB and by_job[flaky][4] == 100 * KIB
    assert recorder.nbytes == summary.bytes_total == 130 * KIB
    handled = [(e[1], e[3]) for e in recorder.events if e[0] == "handled"]
    assert sorted(handled, key=str) == sorted(
        [(flaky, "transient"), (flaky, None), (ok, None), (missing, "not_found")], key=str
    )
    assert all(e[2] == "file" for e in recorder.events if e[0] == "handled")
    for job_id in (flaky, ok, missing):  # the pipeline's report falls inside its lane
        mine = [e[0] for e in recorder.events if e[0] != "retried" and e[1] == job_id]
        assert mine == ["started", "handled", "finished"] * (len(mine) // 3)


async def test_a_get_batch_reports_to_its_observer(origin: Origin, tmp_path: Path) -> None:
    """``get``'s batch tells the same observer protocol: starts, the pipeline's handling,
    ends (done or failed, with the class) and every byte."""
    origin.add("a.bin", 40 * KIB)
    specs = [JobSpec(url=origin.url("a.bin")), JobSpec(url=origin.url("gone.bin"))]
    recorder = Recorder()
    options = BatchOptions(output_dir=tmp_path, parallel=2)
    batch = Batch(specs, options, QuietReporter(), Redactor.for_specs(specs), recorder)
    await batch.run(transfer_settings())
    finished = sorted((e[1], e[2], e[3], e[4]) for e in recorder.events if e[0] == "finished")
    assert finished == [("0", Finish.DONE, None, 40 * KIB), ("1", Finish.FAILED, "not_found", 0)]
    handled = {(e[2], e[3]) for e in recorder.events if e[0] == "handled"}
    assert handled == {("file", "not_found"), ("file", None)}
    assert recorder.nbytes == 40 * KIB
    assert hashlib.sha256((tmp_path / "a.bin").read_bytes()).hexdigest() == origin.sha256("a.bin")


class Broken(NullObserver):
    def job_started(self, job_id: str, url: str) -> None:
        raise RuntimeError("observer bug")


def test_observers_tell_each_in_order_and_survive_one_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, last = Recorder(), Recorder()
    fan: Observer = Observers(first, Broken(), last)
    with caplog.at_level(logging.ERROR, logger="hauler.observe"):
        fan.job_started("j1", "http://h/x")
    fan.job_finished("j1", Finish.FAILED, "not_found", 7)
    fan.retried("j2", "timeout", 1.5)
    fan.bytes_transferred(5)
    fan.job_handled("j3", "media", None, 2.0)
    fan.pool_event("banned", "proxy-1")
    expected = [
        ("started", "j1", "http://h/x"),
        ("finished", "j1", Finish.FAILED, "not_found", 7),
        ("retried", "j2", "timeout", True),
        ("handled", "j3", "media", None),
        ("pool", "banned", "proxy-1"),
    ]
    assert first.events == last.events == expected
    assert first.nbytes == last.nbytes == 5
    assert "observer bug" in caplog.text
