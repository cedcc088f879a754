"""The vocabulary every layer shares: the one user-facing error (:mod:`.errors`), the settings scheme and its
checks (:mod:`.settings`), the method and dataset registries (:mod:`.registry`), random-search distributions
(:mod:`.hparams`), the metrics of a split (:mod:`.metrics`) and the model-selection rules (:mod:`.selection`).

May import: nothing of the package outside ``core``; no torch.
"""
