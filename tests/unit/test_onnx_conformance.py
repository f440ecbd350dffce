"""Conformance against the ONNX backend test data shipped in the onnx wheel (PyTorch-exported models
with recorded inputs and outputs). Every model either lowers to an IR whose interpretation matches
the recorded outputs, or is refused with amsc's one-line error, never with a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from compiler.errors import AmscError
from compiler.frontend import load_model
from helpers import ir_run_onnx_layout

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted(p.parent for sub in ("pytorch-converted", "pytorch-operator")
                for p in (DATA / sub).glob("*/model.onnx"))
# Models amsc must lower (their ops are all supported); the rest must be refused cleanly.
MUST_LOWER = {"test_Linear", "test_Linear_no_bias", "test_ReLU", "test_operator_flatten", "test_operator_view",
              "test_operator_addconstant"}


def _tensors(folder: Path) -> tuple[dict, list]:
    ins, outs = {}, []
    model = onnx.load(folder / "model.onnx")
    inits = {i.name for i in model.graph.initializer}
    in_names = [i.name for i in model.graph.input if i.name not in inits]
    for f in sorted((folder / "test_data_set_0").glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
        t = onnx.TensorProto()
        t.ParseFromString(f.read_bytes())
        ins[in_names[len(ins)]] = numpy_helper.to_array(t)
    for f in sorted((folder / "test_data_set_0").glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
        t = onnx.TensorProto()
        t.ParseFromString(f.read_bytes())
        outs.append(numpy_helper.to_array(t))
    return ins, outs


def test_backend_data_present():
    assert len(MODELS) > 50, f"onnx backend test data not found under {DATA}"
    assert MUST_LOWER <= {m.name for m in MODELS}


@pytest.mark.parametrize("folder", MODELS, ids=[m.name for m in MODELS])
def test_backend_model(folder):
    try:
        ir, _ = load_model(folder / "model.onnx")
    except AmscError as e:
        assert folder.name not in MUST_LOWER, f"{folder.name} should lower: {e}"
        assert "\n" not in str(e) and str(folder / "model.onnx") in str(e)
        return
    ins, outs = _tensors(folder)
    got = ir_run_onnx_layout(ir, ins)
    assert len(got) == len(outs)
    for g, w in zip(got, outs):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
