"""``python -m hauler``: the same as the ``hauler`` console script."""

from hauler.cli import get, queue, worker  # noqa: F401  (commands register on import)
from hauler.cli.app import app

app(prog_name="hauler")
