"""Sweeps: planning methods × trials × seeds (:mod:`.plan`), the checks before anything trains
(:mod:`.preflight`), executing a run or a stack of runs (:mod:`.execute`), where they execute (:mod:`.launchers`:
in process, a local pool, Ray, SLURM; :mod:`.capacity` for several runs per device), one sweep from plan to
outcome (:mod:`.sweep`) and its live view (:mod:`.progress`).

May import: every layer below the API (``core`` to ``profiling``); never the API or the CLI.
"""
