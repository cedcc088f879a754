"""A run: its identity (:mod:`.spec`: what determines its numbers, how it executes, where it is stored), its files
on disk (:mod:`.store`: atomic writes, the one results reader), which runs of a folder are done, claimed or crashed
(:mod:`.state`), what a run records while it trains and when it ends (:mod:`.recording`, with :mod:`.events`,
:mod:`.environment` and :mod:`.tensorboard_log`).

May import: ``core`` and ``models`` (the latent layers' names); never training, sweeps or reports. :mod:`.store`
does not import torch, so reports read runs without it.
"""
