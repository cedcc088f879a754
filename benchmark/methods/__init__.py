"""Built-in methods, one module each; importing this package registers them."""

from benchmark.methods import anchor_w2, dro_lt, erm, groupdro, jm1, jtt, mr2, nc_frozen  # noqa: F401
from benchmark.methods.base import Method, TrainInfo

__all__ = ["Method", "TrainInfo"]
