"""Proxy and account pools shared by the fleet through the store, and the per-host budgets:
what a job is lent, what it gives back, and the bans decided in ``hauler.policy``."""
