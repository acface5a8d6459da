"""hauler: a distributed download engine."""

__version__ = "0.1.0"
