"""The one training engine: a run's set-up, stages, epochs, step accounting, evaluation and records, trained alone
or stacked with others as one model (:mod:`.stacking`, a strategy of the engine), under the run's execution
settings (threads, deterministic algorithms, the device).

May import: ``core``, ``data``, ``models``, ``methods`` and ``runs`` (a run's spec); knows nothing of specific
methods (only their hooks), of files or of launchers.
"""
