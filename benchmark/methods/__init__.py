"""Built-in methods, one module each (:mod:`.base`: the interface the training engine calls; :mod:`.balancing`: what
subg, suby, rwg and rwy share); importing this package registers them.

May import: ``core``, ``data`` and ``models``; a method knows nothing of files, launchers or the training loop.
"""

from benchmark.methods import (  # noqa: F401
    anchor_w2,
    dfr,
    dro_lt,
    erm,
    groupdro,
    jm1,
    jtt,
    logit_adj,
    mr2,
    nc_frozen,
    rwg,
    rwy,
    subg,
    suby,
)
from benchmark.methods.base import Method, TrainInfo

__all__ = ["Method", "TrainInfo"]
