"""The bounds a plugin declares its hyperparameters' and options' ranges with (``from benchmark.settings import
Range``), kept at this path for plugins; they are defined in :mod:`benchmark.core.settings`."""

from benchmark.core.settings import AT_LEAST_0, FRACTION, POSITIVE, SEED, Range

__all__ = ["AT_LEAST_0", "FRACTION", "POSITIVE", "SEED", "Range"]
