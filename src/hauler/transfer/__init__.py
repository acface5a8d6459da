"""The HTTP transfer engine: segmented, resumable, verified downloads (see ``Engine``)."""
