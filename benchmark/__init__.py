"""Group-robustness benchmark: eight methods, one model, one trainer, worst-group leaderboards.

The Python API (:mod:`benchmark.api`): ``load_dataset``, ``run``, ``sweep``, ``leaderboard``, ``evaluate``,
``load_model`` and ``predict`` (a run's kept model), and
``BenchError``, the one-line error every bad input raises. Plugins import :func:`register_method` /
:func:`register_dataset` from here.
"""

from benchmark.errors import BenchError
from benchmark.registry import register_dataset, register_method

__version__ = "0.1.0"
API = ("load_dataset", "run", "sweep", "leaderboard", "evaluate", "load_model", "predict")
__all__ = ["BenchError", "register_dataset", "register_method", "__version__", *API]


def __getattr__(name: str):
    """The API functions, imported on first use (``import benchmark`` stays light for plugins and the CLI)."""
    if name in API:
        from benchmark import api

        return getattr(api, name)
    raise AttributeError(f"module 'benchmark' has no attribute '{name}'")
