"""The worker's service: open the store, build the engine and the pipeline (durable: fsync on),
run one ``Worker`` with its stop signals until it exits, then close. The CLI and, later, the
HTTP API call this; they only parse and print."""

from __future__ import annotations

from collections.abc import Callable

from hauler.config import Settings, WorkerSettings
from hauler.gate import OPEN
from hauler.observe import Observer
from hauler.store import open_store
from hauler.worker.runner import Identity, Summary, Worker

# Called once the worker is built, before it claims a job (e.g. to print who it is).
OnStarted = Callable[[Worker], None]


def _no_banner(worker: Worker) -> None:
    del worker


async def serve(
    settings: Settings,
    ws: WorkerSettings,
    on_started: OnStarted = _no_banner,
    observer: Observer | None = None,
) -> Summary:
    """Run one worker of the fleet until its mode or a stop says to exit; its summary.

    Raises ``StoreUnavailable`` if the store cannot be opened, ``BadRequest`` on bad settings."""
    # Imported here: the engine is heavy, and only a serving process needs it.
    from hauler.pipeline.acquire import broker_for
    from hauler.pipeline.kinds import resolver_for
    from hauler.pipeline.run import Pipeline
    from hauler.pools.holds import sweeping
    from hauler.pools.hostgate import HostGate
    from hauler.pools.prober import probing
    from hauler.transfer.engine import Engine
    from hauler.worker.signals import install_stop_signals

    store = await open_store(settings.store)
    # Known before the worker is built: its lends are held under the name it registers under.
    identity = Identity.of(ws)
    try:
        transfer = settings.transfer
        if transfer.fsync_files is None:
            transfer = transfer.model_copy(update={"fsync_files": True})
        gate = HostGate(store, settings.hosts) if settings.hosts.enabled else None
        try:
            async with Engine(transfer, gate=gate or OPEN) as engine:
                pipeline = Pipeline(
                    resolver_for(engine, store),
                    ws.output_dir,
                    broker=broker_for(store, settings.pools, transfer.proxy, holder=identity.name),
                    observer=observer,
                    durable=bool(transfer.fsync_files),
                    on_bannable=settings.pools.on_bannable,
                )
                worker = Worker(store, pipeline, ws, identity=identity, observer=observer)
                remove_signals = install_stop_signals(worker)
                on_started(worker)
                try:
                    # With [pools] probe_url: banned proxies are probed beside the lanes; with
                    # the pools on, what dead workers held is given back.
                    async with (
                        probing(store, settings.pools),
                        sweeping(store, settings.pools, identity.name),
                    ):
                        return await worker.run()
                finally:
                    remove_signals()
        finally:
            if gate is not None:
                await gate.aclose()
    finally:
        await store.close()
