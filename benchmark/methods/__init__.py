"""Built-in methods, one module each (:mod:`.base`: the interface the training engine calls); importing this
package registers them.

May import: ``core``, ``data`` and ``models``; a method knows nothing of files, launchers or the training loop.
"""

from benchmark.methods import anchor_w2, dro_lt, erm, groupdro, jm1, jtt, mr2, nc_frozen  # noqa: F401
from benchmark.methods.base import Method, TrainInfo

__all__ = ["Method", "TrainInfo"]
