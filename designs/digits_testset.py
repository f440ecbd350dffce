#!/usr/bin/env python3
"""Write the held-out digits (the 25 % test split the bundled designs were trained without) as
OUT_DIR/x.npy ([N, 64], pixels in [0, 1]), OUT_DIR/x_centred.npy (2 * pixel - 1, the signed input of
designs/cnn_signed) and OUT_DIR/y.npy (labels), for `amsc rtl-sim` and `amsc run`. A design names
the set it reads in its `testset` file (default x).

    .venv/bin/python designs/digits_testset.py build/digits
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import split  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/digits")
    out.mkdir(parents=True, exist_ok=True)
    _, xte, _, yte = split()
    np.save(out / "x.npy", xte.astype(np.float32))
    np.save(out / "x_centred.npy", (2 * xte - 1).astype(np.float32))
    np.save(out / "y.npy", yte.astype(np.int64))
    print(f"digits test set: {len(yte)} images -> {out}/x.npy, {out}/x_centred.npy, {out}/y.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
