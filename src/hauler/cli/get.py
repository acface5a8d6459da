"""hauler get commands (filled in by their issue)."""
