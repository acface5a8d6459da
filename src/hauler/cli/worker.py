"""hauler worker commands (filled in by their issue)."""
