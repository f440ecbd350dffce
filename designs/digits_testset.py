#!/usr/bin/env python3
"""Write the held-out digits (the 25 % test split both bundled designs were trained without) as
OUT_DIR/x.npy ([N, 64], pixels in [0, 1]) and OUT_DIR/y.npy (labels), for `amsc rtl-sim`.

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
    np.save(out / "y.npy", yte.astype(np.int64))
    print(f"digits test set: {len(yte)} images -> {out}/x.npy, {out}/y.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
