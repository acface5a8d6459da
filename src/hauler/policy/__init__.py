"""Pure decisions (no I/O): backoff, retry, split planning inputs, later ban policy."""
