"""Live recording (middle layer, beside transfer/ and media/, importing neither): HLS playlists
(``m3u8``), the part files a recording is written into (``parts``), and the follower that
records a live HLS playlist over an injected HTTP getter (``follow``)."""
