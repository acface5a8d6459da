"""The worker fleet's process: lanes, claim loop, leases with fencing, pause/stop, signals.

``runner.Worker`` is the process; importing this package imports nothing heavy.
"""
