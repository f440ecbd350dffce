#!/usr/bin/env python3
"""Write the held-out digits (the 25 % test split both bundled designs were trained without) as
OUT_DIR/x.npy ([N, 64], pixels in [0, 1]) and OUT_DIR/y.npy (labels), for `amsc rtl-sim`.

    .venv/bin/python designs/digits_testset.py build/digits
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/digits")
    out.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    _, xte, _, yte = train_test_split(d.data / 16.0, d.target, test_size=0.25, random_state=0, stratify=d.target)
    np.save(out / "x.npy", xte.astype(np.float32))
    np.save(out / "y.npy", yte.astype(np.int64))
    print(f"digits test set: {len(yte)} images -> {out}/x.npy, {out}/y.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
