"""The room watcher against a real page, real yt-dlp and a real live HLS stream: a room "not
live yet" (no video: yt-dlp says "Unsupported URL") polled until its page shows the stream;
the polls at the seeded schedule; two watchers sharing one SQLite info cache extracting about
half as often as two without; fatal pages raising; and the notify events, received by a
loopback hook."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from hauler.clock import FakeClock, SystemClock
from hauler.config import TransferSettings
from hauler.errors import BotCheck, NotFound
from hauler.pipeline.livewatch import RoomWatcher
from hauler.pipeline.notify import notify
from hauler.policy.watch import next_poll_s
from hauler.store import Store, open_store
from tests.live.room import TITLE, RoomPage, receiver, room_page
from tests.live.stream import HlsStream

POLL_S = 0.5
WAIT_S = 30.0  # the most any real-time wait of these tests may take


@pytest.fixture
async def room() -> AsyncIterator[RoomPage]:
    async with room_page() as page:
        yield page


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Return once ``condition()`` holds; fail after ``timeout_s`` of real time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


async def test_waits_until_the_room_goes_live(
    room: RoomPage, hls: HlsStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hauler.pipeline.livewatch")
    watcher = RoomWatcher(room.url, SystemClock(), poll_s=POLL_S, rng=random.Random(1))
    stop = asyncio.Event()
    task = asyncio.ensure_future(watcher.wait_live(stop))
    await until(lambda: room.count() >= 3, "three polls of the offline room")
    assert not task.done()
    room.go_live(hls.url)
    stream = await asyncio.wait_for(task, WAIT_S)

    assert stream is not None
    assert stream.url == hls.url
    assert stream.protocol == "hls"
    assert stream.headers["Referer"] == room.url  # what yt-dlp says to send
    assert stream.title is not None and TITLE in stream.title
    assert watcher.extractions == room.count() >= 4
    # The "not live yet" page is said once at INFO, then at DEBUG.
    no_stream = [r for r in caplog.records if "shows no stream yet" in r.getMessage()]
    assert [r.levelno for r in no_stream].count(logging.INFO) == 1
    assert len(no_stream) == room.count() - 1
    # The URL it found is the live playlist: it lists the stream's segments.
    async with aiohttp.ClientSession() as session, session.get(stream.url) as response:
        playlist = await response.text()
    assert "#EXTINF" in playlist and "seg" in playlist


async def test_stop_ends_the_wait(room: RoomPage) -> None:
    clock = FakeClock()
    watcher = RoomWatcher(room.url, clock, poll_s=POLL_S)
    stop = asyncio.Event()
    task = asyncio.ensure_future(watcher.wait_live(stop))
    await until(lambda: room.count() == 1 and clock.pending() == 1, "the first poll")
    stop.set()
    assert await asyncio.wait_for(task, WAIT_S) is None
    assert room.count() == 1


async def test_polls_at_the_jittered_schedule(room: RoomPage) -> None:
    clock = FakeClock()
    seed = 11
    watcher = RoomWatcher(room.url, clock, poll_s=POLL_S, rng=random.Random(seed))
    mirror = random.Random(seed)  # the draws the watcher makes, in its order
    stop = asyncio.Event()
    task = asyncio.ensure_future(watcher.wait_live(stop))
    try:
        await until(lambda: room.count() == 1 and clock.pending() == 1, "the first poll at once")
        delays = []
        for polls in range(2, 7):
            delay_s = next_poll_s(POLL_S, mirror)
            delays.append(delay_s)
            clock.advance(delay_s - 0.01)
            await asyncio.sleep(0.1)  # time for a poll that would come too early
            assert room.count() == polls - 1, f"poll {polls} came before {delay_s:.3f} s"
            clock.advance(0.02)
            await until(
                lambda n=polls: room.count() == n and clock.pending() == 1,  # type: ignore[misc]
                f"poll {polls} after {delay_s:.3f} s",
            )
        assert len({round(d, 3) for d in delays}) == len(delays)  # jittered, not one interval
        assert all(0.4 <= d <= 0.6 for d in delays)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def _extractions(page: RoomPage, stores: list[Store | None], clock: FakeClock) -> int:
    """The page requests two watchers (the store each uses as its cache) make over 6 s of the
    fake clock's time, the second started once the first is waiting."""
    stop = asyncio.Event()
    tasks = []
    before = page.count()
    for number, store in enumerate(stores, start=1):
        watcher = RoomWatcher(
            page.url, clock, poll_s=POLL_S, cache=store, rng=random.Random(number)
        )
        tasks.append(asyncio.ensure_future(watcher.wait_live(stop)))
        await until(lambda n=number: clock.pending() == n, f"watcher {number} waiting")  # type: ignore[misc]
    try:
        for _ in range(120):  # 6 s in steps of 50 ms, each step's polls done before the next
            clock.advance(0.05)
            await until(lambda: clock.pending() == len(stores), "the watchers waiting again")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    return page.count() - before


async def test_a_shared_cache_halves_the_extractions(room: RoomPage, tmp_path: Path) -> None:
    clock = FakeClock(start=time.time())
    alone = await _extractions(room, [None, None], clock)
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}", clock)
    try:
        shared = await _extractions(room, [store, store], clock)
        key = f"live:{room.url}"
        assert (await store.get_info(key) or {}).get("state") == "offline"
    finally:
        await store.close()
    # 6 s at ~0.5 s: about 12 polls each, 24 in all (measured: 24 alone, 14 shared).
    assert 20 <= alone <= 32
    assert shared <= alone * 0.65
    assert shared >= 6  # each answer expires: the room is still polled


async def test_a_cached_live_answer_spares_the_second_watcher(
    room: RoomPage, hls: HlsStream, tmp_path: Path
) -> None:
    room.go_live(hls.url)
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        stop = asyncio.Event()
        first = await RoomWatcher(room.url, SystemClock(), poll_s=5.0, cache=store).wait_live(stop)
        second = await RoomWatcher(room.url, SystemClock(), poll_s=5.0, cache=store).wait_live(stop)
    finally:
        await store.close()
    assert first is not None and second is not None
    assert room.count() == 1
    assert (first.is_cached, second.is_cached) == (False, True)
    assert (second.url, second.protocol, second.headers) == (hls.url, "hls", first.headers)


@pytest.mark.parametrize(("path", "error"), [("/missing", NotFound), ("/wall", BotCheck)])
async def test_a_fatal_or_walled_page_raises(
    room: RoomPage, path: str, error: type[Exception]
) -> None:
    watcher = RoomWatcher(room.at(path), FakeClock(), poll_s=POLL_S)
    with pytest.raises(error):
        await asyncio.wait_for(watcher.wait_live(asyncio.Event()), WAIT_S)
    assert room.count(path) == 1


async def test_notify_posts_the_event() -> None:
    async with receiver() as hook:
        room = "https://viewer:hunter2@rooms.example/live/1?password=s3cret"
        ended = {
            "event": "ended",
            "url": room,
            "job_id": "j1",
            "title": "Room 1",
            "parts": [{"path": "/out/a.part001.ts", "duration_s": 3.0}],
            "gaps": [{"after_s": 1.0, "missing_s": 2.0}],
            "end": "endlist",
        }
        assert await notify(hook.url(), {**ended, "event": "live"}) is True
        assert await notify(hook.url(), ended) is True
    live, done = hook.events
    assert live["event"] == "live" and done["event"] == "ended"
    assert hook.headers[0]["Content-Type"] == "application/json"
    for event in hook.events:
        assert "hunter2" not in event["url"] and "s3cret" not in event["url"]
        assert event["url"].startswith("https://") and "rooms.example/live/1" in event["url"]
        assert event["job_id"] == "j1" and event["title"] == "Room 1"
        assert event["at"].endswith("Z") and event["at"][:2] == "20"
    assert done["parts"] == ended["parts"] and done["gaps"] == ended["gaps"]
    assert done["end"] == "endlist"


async def test_notify_failures_warn_and_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hauler.pipeline.notify")
    event = {"event": "live", "url": "http://127.0.0.1/room", "job_id": "j"}
    async with receiver(status=500) as failing:
        assert await notify(failing.url("u:hunter2@"), event) is False
        port = failing.port
    # Nothing listens there now.
    assert await notify(f"http://u:hunter2@127.0.0.1:{port}/hook", event) is False
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "answered 500" in messages[0]
    assert all("hunter2" not in m and f"127.0.0.1:{port}/hook" in m for m in messages)


async def test_notify_keeps_to_the_url_guard_and_follows_no_redirect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hook's URL passes the engine's guard (a private address refused where the settings
    say so, a scheme not allowed refused) and a 307 is not followed to another address."""
    caplog.set_level(logging.WARNING, logger="hauler.pipeline.notify")
    event = {"event": "live", "url": "http://127.0.0.1/room"}
    public_only = TransferSettings(allow_private=False)
    async with receiver() as hook, receiver() as elsewhere:
        assert await notify(hook.url(), event, settings=public_only) is False
        assert await notify("file:///etc/passwd", event) is False
        hook.redirect_to = elsewhere.url()
        assert await notify(hook.url(), event) is True  # a 3xx: received, not followed
    assert hook.events == [] and elsewhere.events == []
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "non-public address 127.0.0.1" in messages[0]
    assert "scheme" in messages[1]


async def test_notify_gives_up_at_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hauler.pipeline.notify")
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        event = {"event": "live", "url": "http://127.0.0.1/room"}
        assert await notify(f"http://127.0.0.1:{port}/hook", event, timeout_s=0.3) is False
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted  # it did connect, and waited for an answer that never came
    assert any("no answer in time" in r.getMessage() for r in caplog.records)


async def test_polls_keep_to_the_room_host_budget(room: RoomPage, tmp_path: Path) -> None:
    """Each extraction passes the request gate as one request: a room host limited to one
    request every 2 s is polled no faster, and a cooldown (a 429 another worker met) holds
    the next poll until it ends; the store counts the polls it let through."""
    from hauler.config import HostSettings
    from hauler.hosts import HostLimit
    from hauler.pools.hostgate import HostGate

    clock = FakeClock(start=time.time())
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}", clock)
    gate = HostGate(store, HostSettings(), clock)
    try:
        await store.set_host_limit(HostLimit("127.0.0.1", rate_per_s=0.5))
        watcher = RoomWatcher(room.url, clock, poll_s=POLL_S, gate=gate)
        began = clock.monotonic()
        for _ in range(3):
            await watcher.poll()
        assert clock.monotonic() - began == pytest.approx(4.0, abs=0.01)
        await store.cool_host("127.0.0.1", None, clock.now() + 30.0)
        clock.advance(1.0)  # the gate's next look at the store sees the cooldown
        await watcher.poll()
        assert clock.monotonic() - began == pytest.approx(4.0 + 30.0, abs=0.01)
        await gate.aclose()
        (budget,) = await store.host_budgets()
    finally:
        await store.close()
    assert room.count() == 4 and budget.requests == 4
