"""hauler queue commands (filled in by their issue)."""
