"""The kinds this hauler runs, each with its handler, in one ``Resolver``: the composition that
``get`` and the worker share (so that both run every kind the same way)."""

from __future__ import annotations

from hauler.models import JobKind
from hauler.pipeline.file import FileHandler
from hauler.pipeline.resolve import Resolver
from hauler.transfer.engine import Engine


def resolver_for(engine: Engine) -> Resolver:
    """Every kind there is a handler for, the file handler on ``engine``."""
    resolver = Resolver()
    resolver.register(JobKind.FILE, FileHandler(engine))
    return resolver
