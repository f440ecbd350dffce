#!/usr/bin/env python3
"""Train the bundled CNN (ReLU, pixels in [0, 1]; see designs/digits_cnn.py) and write model.onnx.
Run:  .venv/bin/python designs/cnn_digits/make_model.py
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from digits_cnn import build  # noqa: E402

if __name__ == "__main__":
    build(HERE, "cnn_digits")
