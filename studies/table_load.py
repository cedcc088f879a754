"""How long does ``--dataset table`` take to load a table of 50,000 rows and 20 columns (issue target: under 10 s
on a 2-core machine)? Writes such a table (12 numeric columns with 1% missing values, 6 categorical ones of 2–50
levels, a label and an attribute) as CSV and Parquet, then times building the dataset from each, best of three.

    python studies/table_load.py --rows 50000 --out results/table-load
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.table import Table


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    """A table of ``rows`` rows: 12 numeric and 6 categorical features, ``sex`` and ``label``."""
    rng = np.random.default_rng(seed)
    columns = {f"num{j}": rng.normal(size=rows) for j in range(12)}
    for j in range(12):
        columns[f"num{j}"][rng.random(rows) < 0.01] = np.nan
    for j, levels in enumerate((2, 5, 10, 20, 30, 50)):
        columns[f"cat{j}"] = rng.choice([f"level{k}" for k in range(levels)], rows)
    columns["sex"] = rng.choice(["F", "M"], rows)
    columns["label"] = (columns["num0"] + (columns["sex"] == "M") + rng.normal(size=rows) > 1).astype(int)
    return pd.DataFrame(columns)


def load_seconds(path: Path, repeats: int = 3) -> float:
    """The best of ``repeats`` wall times of building the dataset from ``path``."""
    options = Table.check_options({**Table.option_defaults(), "target": "label", "attributes": "sex"})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        Table().build(options, str(path))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("results/table-load"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = synthetic(args.rows)
    for name, write in (("table.csv", table.to_csv), ("table.parquet", table.to_parquet)):
        path = args.out / name
        write(path, index=False)
        print(f"{name}: {args.rows} rows × {table.shape[1]} columns loads in {load_seconds(path):.2f} s")


if __name__ == "__main__":
    main()
