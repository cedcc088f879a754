"""Maintained tools. Two run whole sweeps: the tuned reference (:mod:`.reference`, ``bench reference``) and the
default-suite timing (:mod:`.suite`, ``bench time-suite``); each starts ``bench`` in a child process per sweep, as a
user would (the timing samples that process tree's memory), and reads the runs back through the store; their
statistics and tables live in ``report``. :mod:`.embed` (``bench embed``) writes a pretrained backbone's features of
an image dataset as one ``.npz``.

May import: every layer below the CLI; never the CLI (they run it as a child process).
"""
