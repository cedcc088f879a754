"""The ``bench`` command: list, describe, run, report, profile (one module per command, :mod:`.common` shared).

Every input is validated before anything is trained or written; a :class:`~benchmark.core.errors.BenchError` prints
one line (``error: ...``) and exits with code 2.

May import: everything; it is a shell over :mod:`benchmark.api` and the packages below.
"""

from __future__ import annotations

from benchmark.cli import catalog, profile, report, run  # noqa: F401  (each registers its commands on app)
from benchmark.cli.common import app


def main() -> None:
    app()
