"""One job end to end, for every kind: ``Pipeline`` and the seams it is made of.

- ``handler``: the ``Handler`` protocol (``run(JobRun) -> Outcome``), ``JobRun``, ``RunOptions``,
  ``Resources``; ``file``: ``FileHandler``, the engine as a handler.
- ``resolve``: the ``Resolver`` of a job's kind (``auto`` → the first kind that claims the URL,
  else a file) and its handler.
- ``acquire``: the ``ResourceBroker`` that lends proxies and accounts (the pools plug in there).
- ``verify`` and ``finalize``: staged artifacts checked (size, checksum, ffprobe) and renamed
  into place atomically, for every kind that stages its files.
- ``outcome``: ``Outcome``, ``Artifact``, ``Expectation`` and the stored ``result_record``.
- ``run``: ``Pipeline``, which runs those stages and reports to the ``Observer``.
- ``kinds``: ``resolver_for(engine)``, every kind this hauler has, as ``get`` and the worker use.

Import from the modules: this package imports none of them, so that the CLI reading an outcome
does not load the engine.
"""
