"""The random-search distributions a plugin method declares its ``space`` with (``from benchmark.hparams import
Uniform``), kept at this path for plugins; they are defined in :mod:`benchmark.core.hparams`, and ``benchmark``
exports them too."""

from benchmark.core.hparams import Choice, LogUniform, Uniform

__all__ = ["Choice", "LogUniform", "Uniform"]
