"""``python -m benchmark.cli``: the same as the ``bench`` command."""

from benchmark.cli import main

main()
