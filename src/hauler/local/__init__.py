"""Local downloads without a store: a batch of files through one engine (``batch``), spread over
processes when it is big (``fanout``), reporting to a ``Reporter`` (``outcome``). ``hauler get``
composes them; so will anything else that downloads here and now."""
