"""Time exprgrad.fitting.data.load_csv on a large numeric CSV, against np.loadtxt on the same file.

Writes a ROWS x 3 file of random numbers in a temporary directory, twice: with 6
significant digits (typical measured data) and with 17 (full float64 round-trip,
the slowest case for any parser). For each it prints the best of REPEAT timings of
load_csv, of np.loadtxt with the same options (the baseline, measured in the
same run), of reading the bytes (the floor), and the ratio load_csv / loadtxt.

    python benchmarks/bench_csv.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time

from exprgrad.fitting.data import load_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = np.random.default_rng(0).standard_normal((args.rows, 3)) * [1.0, 100.0, 1e-3]
    with tempfile.TemporaryDirectory() as folder:
        for label, fmt in (("6 digits", "%.6g"), ("17 digits", "%.17g")):
            path = Path(folder) / "data.csv"
            np.savetxt(path, table, fmt=fmt, delimiter=",", header="x,y,z", comments="")
            data = load_csv(path)
            assert data.rows == args.rows and data.names == ("x", "y", "z")
            ours = best_time(lambda path=path: load_csv(path), args.repeat)
            baseline = best_time(
                lambda path=path: np.loadtxt(
                    path, delimiter=",", skiprows=1, comments=None, encoding="utf-8"
                ),
                args.repeat,
            )
            floor = best_time(path.read_bytes, args.repeat)
            size = path.stat().st_size / 1e6
            print(
                f"{args.rows} x 3, {label} ({size:.0f} MB): load_csv {ours:.3f} s, "
                f"np.loadtxt {baseline:.3f} s, read bytes {floor:.3f} s, "
                f"ratio load_csv/np.loadtxt {ours / baseline:.2f}"
            )


if __name__ == "__main__":
    main()
