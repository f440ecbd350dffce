"""Shared by the bundled digits designs: the train/test split they are all trained and tested
on, and how a design's ONNX model and calibration inputs are written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def split():
    """scikit-learn's 8x8 digits scaled to [0, 1] as [N, 64]: (x_train, x_test, y_train, y_test)."""
    d = load_digits()
    return train_test_split(d.data.astype(np.float64) / 16.0, d.target, test_size=0.25, random_state=0,
                            stratify=d.target)


def save(graph, folder: Path, calib: np.ndarray) -> None:
    """Write folder/model.onnx (opset 13) and folder/calib.npy, the calibration inputs amsc uses for
    the datapath's activation ranges."""
    model = helper.make_model(graph, producer_name="amsc-designs", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    np.save(folder / "calib.npy", calib.astype(np.float32))
