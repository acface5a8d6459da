"""Media pages through yt-dlp (as a library): extraction, format requests, error classes, sidecars.

- ``extract``: ``YoutubeDL.extract_info`` in a thread, messages to our log, hauler errors;
- ``claims``: whether a site extractor (not the generic one) claims a URL, without network;
- ``formats``: ``best``/``worst``/``audio``/a height → yt-dlp format strings, checked;
- ``errors``: yt-dlp's exceptions and messages → the HaulerError taxonomy (``BotCheck`` & co.);
- ``sidecar``: the ``.info.json`` content with cookies, secret headers and passwords stripped.

A middle-layer package: it imports nothing of transfer/, store/, pipeline/ or above. yt-dlp is
the ``media`` extra and is imported where it is used, so that importing this package (the
resolver does, for ``claims``) costs nothing until it is.
"""
