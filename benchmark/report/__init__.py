"""Reports from stored runs: the frames (one row per run, leaderboards, per-group, cost, curves), statistics,
validity diagnostics, formatted tables (Markdown, LaTeX, HTML), plots and the files ``bench report`` writes; the
tables of ``bench power``, ``bench tuning-bias`` and ``bench time-suite``.

May import: ``core`` and ``runs`` (results are read through its store); never torch, the data or the training side.
"""
