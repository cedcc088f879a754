"""Does a model follow digits-hetero-spurious's marker? For each saved run (``bench run --save-model``), on the test
sequences whose marker names another class (mnist1d,conflicting): the share predicted as their true class, as the
class their marker names, and as anything else; and, for comparison, the same sequences with the marker's bump
removed (the signal alone).

    bench run --methods erm,groupdro --dataset digits-hetero-spurious --seeds 0 --save-model --out /tmp/marker
    python studies/marker_study.py /tmp/marker/digits-hetero-spurious
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import benchmark as bm
from benchmark.data.batches import eval_batches
from benchmark.data.digits_hetero_spurious import NUM_CLASSES


@torch.no_grad()
def shares(method, data, rows: torch.Tensor, y: torch.Tensor, named: torch.Tensor) -> tuple[float, float, float]:
    """(% predicted as the true class, as the marker's class, as another) for the sequences at space rows ``rows``."""
    method.eval()
    x = data.spaces[0].x[rows]
    z = method.model.encoders[0](x)
    predicted = method.model.head(z).argmax(1)
    true = (predicted == y).double().mean().item()
    marker = (predicted == named).double().mean().item()
    return 100 * true, 100 * marker, 100 * (1 - true - marker)


def main() -> None:
    """Print, per saved run of the folder, where its predictions of the conflicting test sequences go."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the dataset's results folder (its runs saved with --save-model)")
    args = parser.parse_args()
    for model_file in sorted(args.folder.glob("*/*/model.pt")):
        method, data = bm.load_model(model_file.parent)
        test = torch.cat([batch.idx for batch in eval_batches(data, "test", 4096)])
        conflicting = test[(data.g[test] == data.group_names.index("mnist1d,conflicting"))]
        rows, y = data.row[conflicting], data.y[conflicting]
        named = data.spaces[0].x[rows, 0, -NUM_CLASSES:].argmax(1)
        with_marker = shares(method, data, rows, y, named)
        saved = data.spaces[0].x[rows].clone()
        data.spaces[0].x[rows, 0, -NUM_CLASSES:] = 0.0  # the marker's positions emptied: the signal alone
        without = shares(method, data, rows, y, named)
        data.spaces[0].x[rows] = saved
        name = f"{model_file.parent.parent.name} {model_file.parent.name}"
        print(f"{name}: with the marker {with_marker[0]:.1f}% true class, {with_marker[1]:.1f}% the marker's class, "
              f"{with_marker[2]:.1f}% other; marker emptied {without[0]:.1f}% true, {without[1]:.1f}% marker's")


if __name__ == "__main__":
    main()
