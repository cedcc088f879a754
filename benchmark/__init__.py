"""Group-robustness benchmark: thirteen methods, one model, one training engine, worst-group leaderboards.

The Python API (:mod:`benchmark.api`): ``load_dataset``, ``run``, ``sweep``, ``leaderboard``, ``evaluate``,
``load_model`` and ``predict`` (a run's kept model), and ``BenchError``, the one-line error every bad input raises.

What a plugin imports from here: :func:`register_method` / :func:`register_dataset`, the base classes
``Method`` (with ``TrainInfo`` and ``Stage``) and ``DatasetBuilder`` (with ``GroupDataset`` and ``FeatureSpace``),
the random-search distributions ``LogUniform``, ``Uniform`` and ``Choice``, and ``Range``, the bound of a
numeric setting. Everything but the registries and the error is imported on first use, so ``import benchmark``
stays light.
"""

from benchmark.core.errors import BenchError
from benchmark.core.registry import register_dataset, register_method

__version__ = "0.1.0"
API = ("load_dataset", "run", "sweep", "leaderboard", "evaluate", "load_model", "predict")
PLUGIN = {
    "Method": "benchmark.methods.base",
    "TrainInfo": "benchmark.methods.base",
    "Stage": "benchmark.methods.base",
    "DatasetBuilder": "benchmark.data.builder",
    "GroupDataset": "benchmark.data.core",
    "FeatureSpace": "benchmark.data.core",
    "LogUniform": "benchmark.core.hparams",
    "Uniform": "benchmark.core.hparams",
    "Choice": "benchmark.core.hparams",
    "Range": "benchmark.core.settings",
}
__all__ = ["BenchError", "register_dataset", "register_method", "__version__", *API, *PLUGIN]


def __getattr__(name: str):
    """The API functions and the plugin-facing classes, imported on first use."""
    import importlib

    if name in API:
        return getattr(importlib.import_module("benchmark.api"), name)
    if name in PLUGIN:
        return getattr(importlib.import_module(PLUGIN[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute '{name}'")
