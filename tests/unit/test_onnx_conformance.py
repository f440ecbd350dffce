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
from compiler.options import CompileOptions
from compiler.passes.pipeline import run_pipeline
from compiler.pdk import load_pdk
from helpers import ir_run_onnx_layout

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted(p.parent for sub in ("pytorch-converted", "pytorch-operator")
                for p in (DATA / sub).glob("*/model.onnx"))
# Models amsc must lower (their ops are all supported); the rest must be refused cleanly.
MUST_LOWER = {
    "test_AvgPool2d", "test_AvgPool2d_stride", "test_BatchNorm1d_3d_input_eval", "test_BatchNorm2d_eval",
    "test_BatchNorm2d_momentum_eval", "test_BatchNorm3d_eval", "test_BatchNorm3d_momentum_eval", "test_Conv2d",
    "test_Conv2d_dilated", "test_Conv2d_no_bias", "test_Conv2d_padding", "test_Conv2d_strided", "test_LeakyReLU",
    "test_LeakyReLU_with_negval", "test_Linear", "test_Linear_no_bias", "test_MaxPool2d",
    "test_MaxPool2d_stride_padding_dilation", "test_PixelShuffle", "test_ReLU", "test_Sigmoid", "test_Softmax",
    "test_Tanh", "test_softmax_functional_dim3", "test_softmax_lastdim", "test_operator_addconstant",
    "test_operator_clip", "test_operator_concat2", "test_operator_conv", "test_operator_flatten",
    "test_operator_permute2", "test_operator_view", "test_operator_add_size1_singleton_broadcast",
}


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
    # the front end's IR, and the IR after every canonicalize pass, compute the recorded outputs
    canon = run_pipeline(ir, CompileOptions(), load_pdk("generic"), upto="fuse_activation")
    for stage in (ir, canon):
        got = ir_run_onnx_layout(stage, ins)
        assert len(got) == len(outs)
        for g, w in zip(got, outs):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


#: How many of the suite's models lower (front end, constant folding and host partitioning); the
#: README quotes it. It may only grow: a change that makes it drop has broken an operator.
LOWER_AT_LEAST = 103


def test_conformance_count():
    lowered = 0
    for folder in MODELS:
        try:
            load_model(folder / "model.onnx")
            lowered += 1
        except AmscError:
            pass
    assert lowered >= LOWER_AT_LEAST, f"{lowered} of {len(MODELS)} lower, fewer than {LOWER_AT_LEAST}"
