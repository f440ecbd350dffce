import itertools

import numpy as np
import pytest
from onnx import helper

from compiler.errors import InputError, UnsupportedOpError
from compiler.frontend import load_model
from helpers import compare_with_ort, save_model

RNG = np.random.default_rng(0)
K, M, N = 6, 4, 5


@pytest.mark.parametrize("ta,tb,alpha,beta,bias", list(itertools.product(
    (0, 1), (0, 1), (1.0, 0.5), (1.0, -2.0), (None, "M", "1xM", "scalar"))))
def test_gemm_runtime_a_all_variants(tmp_path, ta, tb, alpha, beta, bias):
    W = RNG.normal(size=(M, K) if tb else (K, M))
    x_dims = [K, "N"] if ta else ["N", K]
    inits = [("W", W)]
    ins = ["x", "W"]
    if bias is not None:
        C = {"M": RNG.normal(size=M), "1xM": RNG.normal(size=(1, M)), "scalar": np.array(0.7)}[bias]
        inits.append(("C", C))
        ins.append("C")
    node = helper.make_node("Gemm", ins, ["y"], name="g", transA=ta, transB=tb, alpha=alpha, beta=beta)
    p = save_model(tmp_path / "m.onnx", [node], [("x", x_dims)], [("y", ["N", M])], inits)
    x = RNG.normal(size=(K, N) if ta else (N, K))
    ir = compare_with_ort(p, {"x": x})
    assert [ir.g.nodes[n]["op"] for n in ir.topo()] == ["input", "dense", "output"]


@pytest.mark.parametrize("ta,tb", list(itertools.product((0, 1), (0, 1))))
def test_gemm_constant_a_runtime_b(tmp_path, ta, tb):
    A = RNG.normal(size=(K, M) if ta else (M, K))
    C = RNG.normal(size=(M, 1))
    node = helper.make_node("Gemm", ["A", "x", "C"], ["y"], name="g", transA=ta, transB=tb, alpha=0.3, beta=1.5)
    x_dims = ["N", K] if tb else [K, "N"]
    p = save_model(tmp_path / "m.onnx", [node], [("x", x_dims)], [("y", [M, "N"])], [("A", A), ("C", C)])
    compare_with_ort(p, {"x": RNG.normal(size=(N, K) if tb else (K, N))})


def test_mlp_with_matmul_add_relu_flatten_reshape_identity(tmp_path):
    W1, b1, W2 = RNG.normal(size=(12, 8)), RNG.normal(size=8), RNG.normal(size=(8, 3))
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
        helper.make_node("Constant", [], ["shp"], name="shape_const",
                         value=helper.make_tensor("v", 7, [2], [0, -1])),
        helper.make_node("Reshape", ["f", "shp"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "W1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
        helper.make_node("Relu", ["hb"], ["a"], name="relu1"),
        helper.make_node("Identity", ["a"], ["ai"], name="id"),
        helper.make_node("MatMul", ["ai", "W2"], ["y"], name="mm2"),
    ]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 3, 4])], [("y", ["N", 3])],
                   [("W1", W1), ("b1", b1), ("W2", W2)])
    compare_with_ort(p, {"x": RNG.normal(size=(N, 3, 4))})


def test_unsupported_op_names_node_and_lists_supported(tmp_path):
    node = helper.make_node("Elu", ["x"], ["y"], name="my_elu")
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 4])], [("y", ["N", 4])])
    with pytest.raises(UnsupportedOpError) as e:
        load_model(p)
    msg = str(e.value)
    assert "my_elu" in msg and "Elu" in msg and "Gemm" in msg and str(p) in msg


def test_weight_shape_mismatch_names_node(tmp_path):
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 5])], [("y", ["N", 3])], [("W", np.ones((3, 4)))])
    with pytest.raises(InputError, match=r"node 'fc' \(Gemm\).*shape \[4, 3\]"):
        load_model(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_weights_rejected(tmp_path, bad):
    W = np.ones((4, 3))
    W[2, 1] = bad
    node = helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 4])], [("y", ["N", 3])], [("W", W)])
    with pytest.raises(InputError, match=r"node 'mm'.*NaN/Inf.*\[2, 1\]"):
        load_model(p)


def test_two_runtime_operands_of_different_shapes_refused(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["x", "h"], ["y"], name="res")]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 4])], [("W", np.ones((4, 2)))])
    with pytest.raises(UnsupportedOpError, match="res"):
        load_model(p)


def test_flatten_into_batch_refused(tmp_path):
    node = helper.make_node("Flatten", ["x"], ["y"], name="fl0", axis=0)
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 4])], [("y", [1, "M"])])
    with pytest.raises(UnsupportedOpError, match="fl0"):
        load_model(p)
