"""``python -m hauler.cli``: the same as the ``hauler`` console script."""

from hauler.cli import main

main()
