"""``--notify-url``: a JSON event POSTed when a room goes live and when a session ends.

The event::

    {"event": "live" | "ended", "url": <the room, redacted>, "job_id": ..., "at": ISO UTC,
     "title": ..., and for "ended": "parts": [...], "gaps": [...], "end": "endlist" | ...}

Best effort: the POST has ``NOTIFY_TIMEOUT_S`` in all, and a failure (refused, timeout, an
answer of 400 or more) is one WARNING naming the redacted notify URL; it never raises, and
never holds a recording up for longer than the timeout. The room's URL in the event is
redacted too (its password, its secret query values): the receiver is a third party.

HTTP goes through ``hauler.net.Sessions`` (this layer imports no aiohttp of its own): the
caller's, or a private one opened and closed for the one POST.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from hauler.config import TransferSettings
from hauler.net import Sessions, check_url
from hauler.redact import redact_url

_log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 5.0
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)


def utc_now_iso(now_s: float | None = None) -> str:
    """``now_s`` (epoch seconds; None: now) as ``2026-01-31T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now_s is None else now_s))


def event_body(event: Mapping[str, Any]) -> bytes:
    """The JSON sent for ``event``: its fields, the room URL redacted, ``at`` filled in when
    missing."""
    body = dict(event)
    if isinstance(body.get("url"), str):
        body["url"] = redact_url(body["url"])
    body.setdefault("at", utc_now_iso())
    return json.dumps(body, default=str, ensure_ascii=False).encode()


async def notify(
    url: str,
    event: Mapping[str, Any],
    sessions: Sessions | None = None,
    *,
    timeout_s: float = NOTIFY_TIMEOUT_S,
    settings: TransferSettings | None = None,
) -> bool:
    """POST ``event`` as JSON to ``url``; True when the receiver answered 2xx or 3xx. Never
    raises (but a cancel): a failure is logged, redacted, at WARNING.

    The URL passes the guard of ``settings`` first (``net.check_url``: the allowed schemes, and
    no private address unless allowed), and a redirect is not followed (a hook that moved
    answers 3xx, which counts as received): the POST goes to the address checked, nowhere else.
    """
    own = sessions is None
    checks = settings or TransferSettings()
    active = sessions or Sessions(checks)
    try:
        await check_url(url, checks)
        status = await _post(active, url, event_body(event), timeout_s)
    except Exception as exc:  # best effort: whatever the POST raised is only reported
        _log.warning("notify %s (%s) failed: %s", redact_url(url), event.get("event"), _brief(exc))
        return False
    finally:
        if own:
            await active.close()
    if status >= 400:
        _log.warning("notify %s (%s): answered %d", redact_url(url), event.get("event"), status)
        return False
    return True


async def _post(sessions: Sessions, url: str, body: bytes, timeout_s: float) -> int:
    session, proxy = sessions.for_url(url, None)
    headers = {"Content-Type": "application/json"}
    async with asyncio.timeout(timeout_s):
        post = session.post(url, data=body, headers=headers, proxy=proxy, allow_redirects=False)
        async with post as response:
            await response.read()  # the connection goes back to the pool only once read
            return response.status


def _brief(exc: BaseException) -> str:
    """The failure in a few words, any URL in it redacted."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _URL.sub(lambda m: redact_url(m.group()), text)[:200]
