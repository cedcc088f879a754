"""The ``bench`` command: list, describe, run, report, profile, and the maintained tools reference, time-suite,
power and tuning-bias (one module per command, :mod:`.common` shared).

Every input is validated before anything is trained or written; a :class:`~benchmark.core.errors.BenchError` prints
one line (``error: ...``) and exits with code 2.

May import: everything; it is a shell over :mod:`benchmark.api`, :mod:`benchmark.tools` and the packages
below.
"""

from __future__ import annotations

from benchmark.cli import (  # noqa: F401  (each registers its commands on app)
    catalog,
    embed,
    export,
    power,
    profile,
    reference,
    report,
    run,
    time_suite,
    tuning_bias,
)
from benchmark.cli.common import app


def main() -> None:
    app()
