"""Maintained tools that run whole sweeps: the tuned reference (:mod:`.reference`, ``bench reference``) and the
default-suite timing (:mod:`.suite`, ``bench time-suite``). Each starts ``bench`` in a child process per sweep, as a
user would (the timing samples that process tree's memory), and reads the runs back through the store; their
statistics and tables live in ``report``.

May import: every layer below the CLI; never the CLI (they run it as a child process).
"""
