import itertools
from pathlib import Path

import numpy as np
import pytest
import onnx
from onnx import helper, numpy_helper

from compiler.errors import InputError, UnsupportedOpError
from compiler.frontend import load_model
from helpers import compare_with_ort, ir_run_onnx_layout, ort_run, save_model

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


def test_op_without_lowering_runs_on_the_host(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node("Elu", ["h"], ["y"], name="my_elu", alpha=0.7)]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 3])], [("W", RNG.normal(size=(3, 4)))])
    ir = compare_with_ort(p, {"x": RNG.normal(size=(5, 4))})
    (h,) = [n for n in ir.g.nodes if ir.g.nodes[n]["op"] == "host"]
    a = ir.g.nodes[h]["attrs"]
    assert a["op_type"] == "Elu" and "no crossbar or digital lowering" in a["reason"] and a["out_axis"] == 0


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


def test_broadcasting_runtime_add_runs_on_the_host(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["x", "h"], ["y"], name="res")]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 4])], [("W", RNG.normal(size=(4, 1)))])
    ir = compare_with_ort(p, {"x": RNG.normal(size=(3, 4))})
    (h,) = [n for n in ir.g.nodes if ir.g.nodes[n]["op"] == "host"]
    assert "same-shape residual" in ir.g.nodes[h]["attrs"]["reason"]


def test_flatten_into_batch_refused(tmp_path):
    node = helper.make_node("Flatten", ["x"], ["y"], name="fl0", axis=0)
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 4])], [("y", [1, "M"])])
    with pytest.raises(UnsupportedOpError, match="fl0"):
        load_model(p)


def test_sum_dropout_hardsigmoid_sub_div(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node("Dropout", ["h"], ["d"], name="drop"),
             helper.make_node("Sum", ["d", "h", "c"], ["s"], name="sum3"),
             helper.make_node("Sub", ["c", "s"], ["t"], name="rsub"),
             helper.make_node("Div", ["t", "k"], ["u"], name="div"),
             helper.make_node("HardSigmoid", ["u"], ["y"], name="hs", alpha=0.3, beta=0.4)]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 3])],
                   [("W", RNG.normal(size=(3, 4))), ("c", RNG.normal(size=3)), ("k", RNG.uniform(1, 2, size=3))])
    ir = compare_with_ort(p, {"x": RNG.normal(size=(6, 4))})
    assert not [n for n in ir.g.nodes if ir.g.nodes[n]["op"] == "host"]


def test_constant_subgraphs_fold_with_the_reference_evaluator(tmp_path):
    # PyTorch's x.view(x.size(0), -1) and weights built from ConstantOfShape and arithmetic
    nodes = [helper.make_node("Shape", ["x"], ["shp"], name="shape"),
             helper.make_node("Gather", ["shp", "zero"], ["b"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["b"], ["b1"], name="unsq", axes=[0]),
             helper.make_node("Concat", ["b1", "minus1"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["f"], name="view"),
             helper.make_node("ConstantOfShape", ["wshape"], ["w0"], name="cos",
                              value=helper.make_tensor("v", 1, [1], [0.5])),
             helper.make_node("Mul", ["w0", "noise"], ["w1"], name="wmul"),
             helper.make_node("Cast", ["w1"], ["W"], name="cast", to=1),
             helper.make_node("MatMul", ["f", "W"], ["y"], name="mm")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", 1, ["N", 2, 3])], [helper.make_tensor_value_info("y", 1, ["N", 4])],
        initializer=[numpy_helper.from_array(np.array(0, np.int64), "zero"),
                     numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
                     numpy_helper.from_array(np.array([6, 4], np.int64), "wshape"),
                     numpy_helper.from_array(RNG.normal(size=(6, 4)).astype(np.float32), "noise")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    p = tmp_path / "m.onnx"
    onnx.save(model, p)
    ir = compare_with_ort(p, {"x": RNG.normal(size=(5, 2, 3))})
    assert sorted(ir.g.nodes[n]["op"] for n in ir.g.nodes) == ["dense", "input", "output", "reshape"]


def test_old_opset_is_upgraded(tmp_path):
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="fc", transB=1, broadcast=1)
    inits = [("W", RNG.normal(size=(3, 4))), ("b", RNG.normal(size=3))]
    p = save_model(tmp_path / "m.onnx", [node], [("x", [2, 4])], [("y", [2, 3])], inits, opset=6)
    x = RNG.normal(size=(2, 4))
    ir, _ = load_model(p)   # onnxruntime has no Gemm-6 kernel: numpy is the reference
    (got,) = ir_run_onnx_layout(ir, {"x": x})
    np.testing.assert_allclose(got, x @ inits[0][1].T + inits[1][1], rtol=1e-6)
    # onnx's converter cannot upgrade this Gemm with a symbolic batch: one clean line
    p = save_model(tmp_path / "s.onnx", [node], [("x", ["N", 4])], [("y", ["N", 3])], inits, opset=6)
    with pytest.raises(InputError, match="opset 6.*version converter cannot upgrade"):
        load_model(p)


def test_host_softmax_at_axis_1_opset_9(tmp_path):
    # SqueezeNet's head: softmax over the channels of a 4-D map, with the opset < 13 flattening
    nodes = [helper.make_node("Conv", ["x", "W"], ["h"], name="conv"),
             helper.make_node("Softmax", ["h"], ["y"], name="sm", axis=1)]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 3, 4, 4])], [("y", ["N", 5, 4, 4])],
                   [("W", RNG.normal(size=(5, 3, 1, 1)))], opset=9)
    ir = compare_with_ort(p, {"x": RNG.normal(size=(2, 3, 4, 4))})
    (h,) = [n for n in ir.g.nodes if ir.g.nodes[n]["op"] == "host"]
    assert ir.g.nodes[h]["attrs"]["op_type"] == "Softmax"


def test_per_token_matmul_on_three_d_input(tmp_path):
    # [N, T, D] @ [D, M] + b: one crossbar read per token
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="proj"),
             helper.make_node("Add", ["h", "b"], ["y"], name="bias")]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 5, 6])], [("y", ["N", 5, 4])],
                   [("W", RNG.normal(size=(6, 4))), ("b", RNG.normal(size=4))])
    ir = compare_with_ort(p, {"x": RNG.normal(size=(3, 5, 6))})
    (d,) = [n for n in ir.g.nodes if ir.g.nodes[n]["op"] == "dense"]
    assert ir.g.nodes[d]["shape"] == (5, 4)


# ------------------------------------------------------------------ 1-D windows and ceil_mode (issue 18)

_CEIL_CASES = [(kind, k, s, p, cip, size) for kind in ("MaxPool", "AveragePool") for k in (2, 3) for s in (1, 2, 3)
               for p in (0, 1) for cip in (0, 1) for size in (7, 8, 13)
               if 2 * p < k and not (kind == "MaxPool" and cip)]


@pytest.mark.parametrize("kind, k, s, p, cip, size", _CEIL_CASES)
def test_ceil_mode_pooling_matches_onnxruntime(tmp_path, kind, k, s, p, cip, size):
    """ceil_mode as extra end padding that no average counts; one combination (an average that
    counts real pads, with an overhang) is refused in one line rather than computed wrongly."""
    from compiler.errors import UnsupportedOpError

    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=1)
    if kind == "AveragePool":
        attrs["count_include_pad"] = cip
    path = save_model(tmp_path / "pool.onnx", [helper.make_node(kind, ["x"], ["y"], **attrs)],
                      [("x", ["N", 2, size, size])], [("y", ["N", 2, None, None])])
    x = np.random.default_rng(k * 100 + s * 10 + size).normal(size=(2, 2, size, size))
    try:
        ir, _ = load_model(path)
    except UnsupportedOpError as e:
        assert kind == "AveragePool" and cip and p and "ceil_mode with count_include_pad=1" in str(e)
        return
    np.testing.assert_allclose(ir_run_onnx_layout(ir, {"x": x})[0], ort_run(path, {"x": x})[0], atol=1e-5)


@pytest.mark.parametrize("op, attrs, out_shape, inits", [
    ("Conv", dict(kernel_shape=[5], pads=[2, 2], strides=[2]), [6, 8], [("W", (6, 4, 5)), ("b", (6,))]),
    ("Conv", dict(kernel_shape=[3], dilations=[2], group=2), [6, 12], [("W", (6, 2, 3))]),
    ("MaxPool", dict(kernel_shape=[3], strides=[2], ceil_mode=1), [4, 8], []),
    ("AveragePool", dict(kernel_shape=[4], strides=[4]), [4, 4], []),
    ("GlobalAveragePool", {}, [4, 1], []),
])
def test_one_d_windows_lower_as_two_d_with_a_unit_height(tmp_path, op, attrs, out_shape, inits):
    """Conv1d, MaxPool1d, AvgPool1d and a 1-D global average pool are the 2-D units with H = 1:
    no host node, and the same numbers as onnxruntime."""
    rng = np.random.default_rng(3)
    ins = ["x"] + [n for n, _ in inits]
    path = save_model(tmp_path / "m.onnx", [helper.make_node(op, ins, ["y"], **attrs)], [("x", ["N", 4, 16])],
                      [("y", ["N", *out_shape])], [(n, rng.normal(size=sh)) for n, sh in inits])
    ir, _ = load_model(path)
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}
    x = rng.normal(size=(3, 4, 16))
    np.testing.assert_allclose(ir_run_onnx_layout(ir, {"x": x})[0], ort_run(path, {"x": x})[0], atol=1e-4)


# ------------------------------------------------------------------ Slice and Split on the chip (issue 18)

_BIG = 2 ** 63 - 1   # the exporters' "to the end"


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ([0], [4], [1], None),                       # ShuffleNet's channel halves
    ([4], [_BIG], [1], [1]),
    ([1], [-1], [2], [2]),                       # negative end, a step
    ([0, 2], [_BIG, 7], [0, 3], [1, 3]),         # the whole batch axis (a no-op) and a strided last axis
    ([-3, 0], [_BIG, 3], [-1, -2], None),        # negative axes and start
])
def test_slice_lowers_to_the_data_movement_unit(tmp_path, starts, ends, axes, steps):
    ins = ["x", "s", "e", "a"] + (["st"] if steps else [])
    inits = [("s", starts), ("e", ends), ("a", axes)] + ([("st", steps)] if steps else [])
    graph = helper.make_graph(
        [helper.make_node("Slice", ins, ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 8, 5, 9])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None] * 4)],
        initializer=[numpy_helper.from_array(np.asarray(v, np.int64), n) for n, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "slice.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(0).normal(size=(3, 8, 5, 9))
    ir = compare_with_ort(path, {"x": x})
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}


def test_slice_with_attributes_before_opset_10(tmp_path):
    path = save_model(tmp_path / "s9.onnx", [helper.make_node("Slice", ["x"], ["y"], starts=[2], ends=[6], axes=[1])],
                      [("x", ["N", 8, 4])], [("y", ["N", 4, 4])], opset=9)
    ir = compare_with_ort(path, {"x": np.random.default_rng(1).normal(size=(2, 8, 4))})
    assert [ir.g.nodes[n]["attrs"] for n in ir.nodes_of("slice")] == [{"axis": 0, "start": 2, "step": 1}]


def test_backward_slice_runs_on_the_host_and_a_batch_slice_is_refused(tmp_path):
    for k, (starts, ends, axes, steps) in enumerate([([7], [0], [1], [-1]), ([0], [1], [0], [1])]):
        path = tmp_path / f"b{k}.onnx"
        save_model(path, [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], [("x", ["N", 8])],
                   [("y", [None, None])])
        m = onnx.load(path)
        m.graph.initializer.extend(numpy_helper.from_array(np.asarray(v, np.int64), n)
                                   for n, v in (("s", starts), ("e", ends), ("a", axes), ("st", steps)))
        onnx.save(m, path)
        if k == 0:
            ir, _ = load_model(path)
            assert [ir.g.nodes[n]["attrs"]["op_type"] for n in ir.nodes_of("host")] == ["Slice"]
        else:   # the batch of [0:1] changes with the batch: no per-sample program computes it
            with pytest.raises(UnsupportedOpError, match="slices the batch axis 0"):
                load_model(path)


@pytest.mark.parametrize("opset, split, attrs", [
    (11, None, dict(axis=1, split=[2, 3, 3])),
    (13, [4, 4], dict(axis=-1)),
    (13, None, dict(axis=1)),
    (18, None, dict(axis=1, num_outputs=3)),   # 8 into 3: parts of 3, 3 and 2
])
def test_split_lowers_to_slices(tmp_path, opset, split, attrs):
    n_out = len(attrs.get("split", split or [0] * attrs.get("num_outputs", 2)))
    outs = [f"y{k}" for k in range(n_out)]
    ins = ["x"] + (["sp"] if split else [])
    graph = helper.make_graph(
        [helper.make_node("Split", ins, outs, **attrs), helper.make_node("Relu", [outs[-1]], ["r"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 8, 8])],
        [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, [None] * 3) for o in outs[:-1] + ["r"]],
        initializer=[numpy_helper.from_array(np.asarray(split, np.int64), "sp")] if split else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "split.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(2).normal(size=(2, 8, 8))
    ir, _ = load_model(path)
    from compiler.ir.interp import run_ir

    got = {ir.g.nodes[n]["origin"]: y for n, y in run_ir(ir, {ir.nodes_of("input")[0]: x}).items()}
    for name, want in zip(outs[:-1] + ["r"], ort_run(path, {"x": x})):
        np.testing.assert_allclose(got[name], want, atol=1e-6)
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}
    assert len(ir.nodes_of("slice")) == n_out


# ------------------------------------------------------------------ ConvTranspose, Resize, DepthToSpace (issue 18)

_CT_CASES = [(k, s, p, op) for k in (1, 2, 3, 4) for s in (1, 2, 3) for p in (0, 1, 2) for op in (0, 1)
             if op < s and 2 * p < k + 2]


@pytest.mark.parametrize("k, s, p, op", _CT_CASES)
def test_conv_transpose_is_a_conv_and_a_depth_to_space(tmp_path, k, s, p, op):
    """Every kernel / stride / pad / output_padding combination onnxruntime accepts: one crossbar
    convolution of the stride phases, the phases interleaved, the pads cropped; no host node."""
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p + (k > 2), p], output_padding=[op, op])
    path = save_model(tmp_path / "ct.onnx", [helper.make_node("ConvTranspose", ["x", "W", "b"], ["y"], **attrs)],
                      [("x", ["N", 3, 5, 6])], [("y", ["N", 2, None, None])],
                      [("W", rng.normal(size=(3, 2, k, k))), ("b", rng.normal(size=2))])
    x = rng.normal(size=(2, 3, 5, 6))
    want = ort_run(path, {"x": x})[0]
    ir, _ = load_model(path)
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}
    assert [ir.g.nodes[n]["attrs"]["stride"] for n in ir.nodes_of("conv")] == [[1, 1]]
    np.testing.assert_allclose(ir_run_onnx_layout(ir, {"x": x})[0], want, atol=1e-4)


def test_conv_transpose_1d(tmp_path):
    rng = np.random.default_rng(5)
    path = save_model(tmp_path / "ct1.onnx",
                      [helper.make_node("ConvTranspose", ["x", "W"], ["y"], kernel_shape=[4], strides=[2], pads=[1, 1])],
                      [("x", ["N", 3, 10])], [("y", ["N", 2, 20])], [("W", rng.normal(size=(3, 2, 4)))])
    ir = compare_with_ort(path, {"x": rng.normal(size=(2, 3, 10))}, atol=1e-4)
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}


@pytest.mark.parametrize("mode, ctm, nearest, scale, ops", [
    ("nearest", "asymmetric", "floor", 2.0, {"expand", "reshape"}),          # torch's nn.Upsample(nearest)
    ("nearest", "half_pixel", "round_prefer_floor", 3.0, {"expand", "reshape"}),
    ("nearest", "asymmetric", "floor", 0.5, {"dense", "transpose"}),
    ("linear", "half_pixel", "floor", 2.0, {"dense", "transpose"}),           # bilinear, align_corners=False
    ("linear", "align_corners", "floor", 1.5, {"dense", "transpose"}),
    ("linear", "pytorch_half_pixel", "floor", 0.5, {"dense", "transpose"}),
    ("cubic", "half_pixel", "floor", 2.0, {"dense", "transpose"}),
])
def test_resize_on_the_data_movement_unit_or_crossbars(tmp_path, mode, ctm, nearest, scale, ops):
    """A repeat (nearest, integer factors) is an expand; any other interpolation one matrix per axis
    (from onnxruntime on probes, checked on a random input) as a dense layer over that axis."""
    node = helper.make_node("Resize", ["x", "", "sc"], ["y"], mode=mode, coordinate_transformation_mode=ctm,
                            nearest_mode=nearest)
    path = save_model(tmp_path / "rs.onnx", [node], [("x", ["N", 3, 6, 8])], [("y", ["N", 3, None, None])],
                      [("sc", [1, 1, scale, scale])], opset=17)
    ir = compare_with_ort(path, {"x": np.random.default_rng(6).normal(size=(2, 3, 6, 8))}, atol=1e-4)
    assert {ir.g.nodes[n]["op"] for n in ir.g.nodes} - {"input", "output"} == ops


def test_resize_with_sizes_and_1d(tmp_path):
    node = helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")
    path = save_model(tmp_path / "rs1.onnx", [node], [("x", ["N", 2, 7])], [("y", ["N", 2, 12])], opset=13)
    m = onnx.load(path)
    m.graph.initializer.append(numpy_helper.from_array(np.array([1, 2, 12], np.int64), "sz"))
    onnx.save(m, path)
    compare_with_ort(path, {"x": np.random.default_rng(7).normal(size=(1, 2, 7))}, atol=1e-4)


@pytest.mark.parametrize("op, attrs, out", [("DepthToSpace", dict(blocksize=2, mode="DCR"), [2, 6, 8]),
                                            ("DepthToSpace", dict(blocksize=2, mode="CRD"), [2, 6, 8]),
                                            ("SpaceToDepth", dict(blocksize=2), [32, 1, 2])])
def test_depth_and_space_rearrangements(tmp_path, op, attrs, out):
    shape = [8, 3, 4] if op == "DepthToSpace" else [8, 2, 4]
    path = save_model(tmp_path / "d2s.onnx", [helper.make_node(op, ["x"], ["y"], **attrs)], [("x", ["N", *shape])],
                      [("y", ["N", *out])])
    ir = compare_with_ort(path, {"x": np.random.default_rng(8).normal(size=(2, *shape))})
    assert {ir.g.nodes[n]["op"] for n in ir.g.nodes} - {"input", "output"} == {"reshape", "transpose"}


def test_expand_of_a_runtime_tensor(tmp_path):
    path = save_model(tmp_path / "ex.onnx", [helper.make_node("Expand", ["x", "s"], ["y"])], [("x", ["N", 3, 1, 4])],
                      [("y", ["N", 3, 5, 4])])
    m = onnx.load(path)
    m.graph.initializer.append(numpy_helper.from_array(np.array([1, 3, 5, 1], np.int64), "s"))
    onnx.save(m, path)
    ir = compare_with_ort(path, {"x": np.random.default_rng(9).normal(size=(2, 3, 1, 4))})
    assert ir.nodes_of("expand")


def test_a_host_node_onnxruntime_cannot_run_grows_its_segment_before_refusing():
    """PyTorch's test_operator_basic: its Mul cannot run on the host with an operand the front end
    left without a batch axis, so its producer (an Add) joins its host segment, in the source model's
    layout; only when the segment reaches graph inputs that have no batch axis is the model refused,
    in one line naming the node the segment grew for."""
    path = Path(onnx.__file__).parent / "backend/test/data/pytorch-operator/test_operator_basic/model.onnx"
    with pytest.raises(UnsupportedOpError) as e:
        load_model(path)
    assert "grown into the host segment of node '#1' (Mul)" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("axes, keep", [([0], 0), ([0], 1), ([2], 0), ([-1], 1)])
def test_reduce_mean_with_the_batch_on_axis_1(tmp_path, axes, keep):
    """A sequence-first [T, 1, D] model averages over T (or D): average pooling, the batch axis kept
    where it is; no host node."""
    path = save_model(tmp_path / "rm.onnx", [helper.make_node("ReduceMean", ["x"], ["y"], axes=axes, keepdims=keep)],
                      [("x", [6, 1, 4])], [("y", [None] * (3 if keep else 2))])
    ir, _ = load_model(path)
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}
    x = np.random.default_rng(10).normal(size=(6, 1, 4))
    np.testing.assert_allclose(ir_run_onnx_layout(ir, {"x": x})[0], ort_run(path, {"x": x})[0], atol=1e-6)


@pytest.mark.parametrize("nodes, inits, out_rank", [
    # the batch moves to axis 1 and back: bookkeeping and one data-movement transpose
    ([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
      helper.make_node("Transpose", ["t"], ["y"], perm=[2, 1, 0])], [], 3),
    # the Q/K/V split of a sequence-first attention: Unsqueeze, Transpose, Squeeze, Gather of one index
    ([helper.make_node("Unsqueeze", ["x", "ax0"], ["u"]),
      helper.make_node("Transpose", ["u"], ["t"], perm=[0, 2, 1, 3]),
      helper.make_node("Squeeze", ["t", "ax0"], ["s"]),
      helper.make_node("Gather", ["s", "i1"], ["y"], axis=0)], [("ax0", [0]), ("i1", 1)], 2),
    # an evenly spaced run of indices is a strided slice
    ([helper.make_node("Gather", ["x", "run"], ["y"], axis=2)], [("run", [1, 3, 5])], 3),
])
def test_layout_ops_take_the_batch_on_any_axis(tmp_path, nodes, inits, out_rank):
    path = save_model(tmp_path / "lay.onnx", nodes, [("x", ["N", 3, 6])], [("y", [None] * out_rank)])
    m = onnx.load(path)
    m.graph.initializer.extend(numpy_helper.from_array(np.asarray(v, np.int64), n) for n, v in inits)
    onnx.save(m, path)
    ir = compare_with_ort(path, {"x": np.random.default_rng(11).normal(size=(2, 3, 6))})
    assert "host" not in {ir.g.nodes[n]["op"] for n in ir.g.nodes}


def test_gather_of_scattered_indices_runs_on_the_host(tmp_path):
    path = save_model(tmp_path / "g.onnx", [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)],
                      [("x", ["N", 6])], [("y", ["N", 3])])
    m = onnx.load(path)
    m.graph.initializer.append(numpy_helper.from_array(np.array([4, 0, 2], np.int64), "idx"))
    onnx.save(m, path)
    ir = compare_with_ort(path, {"x": np.random.default_rng(12).normal(size=(2, 6))})
    assert [ir.g.nodes[n]["attrs"]["op_type"] for n in ir.nodes_of("host")] == ["Gather"]
