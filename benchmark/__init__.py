"""Group-robustness benchmark: eight methods, one model, one trainer, worst-group leaderboards.

Plugins import :func:`register_method` / :func:`register_dataset` from here.
"""

from benchmark.registry import register_dataset, register_method

__version__ = "0.1.0"
__all__ = ["register_dataset", "register_method", "__version__"]
