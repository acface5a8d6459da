"""The bot-wall signs the file engine reads in a refusal's page: a CAPTCHA or "not a bot"
page is a bot check; a plain throttling or access-denied page is not."""

from __future__ import annotations

import pytest

from hauler.botwall import is_bot_wall


@pytest.mark.parametrize(
    ("page", "is_wall"),
    [
        ("<h1>Sign in to confirm you're not a bot</h1>", True),
        ('<div class="g-recaptcha" data-sitekey="x"></div>', True),
        ("Our systems have detected unusual traffic from your computer network.", True),
        ("<title>Just a moment...</title><script src='/cdn-cgi/challenge-platform/cf-chl-'>", True),
        ("Please verify you are a human", True),
        ("<h1>429 Too Many Requests</h1><p>Try again later.</p>", False),
        ("<h1>403 Forbidden</h1><p>You don't have permission to access this resource.</p>", False),
        ("<p>Access denied: this content is not available in your country.</p>", False),
    ],
)
def test_bot_wall_signs(page: str, is_wall: bool) -> None:
    assert is_bot_wall(page) is is_wall
