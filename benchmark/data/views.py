"""A split of a :class:`~benchmark.data.core.GroupDataset` as a plain ``torch.utils.data.Dataset``, for code
outside the trainer (a notebook's own model, a DataLoader)."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data.images import ImageFiles


class SplitView(torch.utils.data.Dataset):
    """The samples of one split, in ascending sample order (the order :func:`benchmark.api.evaluate` expects).

    Item ``i`` is a dict: ``x`` (the sample's features in its own feature space, loaded from disk for image
    files), ``y``, ``a``, ``g`` (ints), ``space`` (the feature space's name) and ``index`` (the sample's index in
    the whole dataset). Feature spaces differ in shape, so batch with a ``collate_fn`` that groups by ``space``,
    or use one space's samples.
    """

    def __init__(self, data, split: str):
        self.data = data
        self.index = data.indices_cpu(split)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        data, sample = self.data, int(self.index[i])
        space = data.spaces[int(data.space_cpu[sample])]
        row = int(data.row_cpu[sample])
        x = space.x.load(np.array([row]))[0] if isinstance(space.x, ImageFiles) else space.x[row]
        labels = {name: int(getattr(data, f"{name}_cpu")[sample]) for name in ("y", "g")}
        return {"x": x, **labels, "a": int(data.a[sample]), "space": space.name, "index": sample}
