"""Built-in methods, one module each; importing this package registers them."""

from benchmark.methods import erm, groupdro  # noqa: F401
from benchmark.methods.base import Method, TrainInfo

__all__ = ["Method", "TrainInfo"]
