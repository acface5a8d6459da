"""The signs of a bot wall in a web page: a site that answers a request it takes for a bot's
with a CAPTCHA or a "confirm you are not a bot" page instead of the file. Such an answer is
``BotCheck`` (bannable: the account or proxy is rotated), not a plain refusal.

Stricter than yt-dlp's messages (``media/errors.py``): a page that only says "too many requests"
is throttling (429, Retry-After), not a bot wall.
"""

from __future__ import annotations

import re

# How much of a refusal's body is read for the signs: a bot-wall page says so near the top.
MAX_PAGE_BYTES = 64 * 1024

_SIGNS = re.compile(
    r"(?i)not a bot|captcha|are you a robot|unusual traffic|anti-bot|suspected as a bot"
    r"|verify (?:that )?you are (?:a )?human|automated (?:queries|requests)|cf-chl-"
)


def is_bot_wall(page: str) -> bool:
    """True when ``page`` (the start of an HTML answer) reads as a bot wall."""
    return _SIGNS.search(page) is not None
