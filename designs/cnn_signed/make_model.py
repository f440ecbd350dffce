#!/usr/bin/env python3
"""Train the signed CNN and write model.onnx: the digits CNN of designs/digits_cnn.py with
LeakyReLU(0.1) between the layers and a centred input, 2 * pixel - 1 in [-1, 1]. Every feature
map is signed, so the chip drives its word lines with bipolar DACs (compile.args: --input-range -1 1).
Run:  .venv/bin/python designs/cnn_signed/make_model.py
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from digits_cnn import build  # noqa: E402

if __name__ == "__main__":
    build(HERE, "cnn_signed", alpha=0.1, centred=True)
