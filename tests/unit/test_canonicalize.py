"""One test per canonicalize rewrite: the rewrite fires, and the IR after it computes what
onnxruntime computes for the original model on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.frontend import load_model
from compiler.ir.verify import verify_ir
from compiler.options import CompileOptions
from compiler.passes.fold_batchnorm import fold_batchnorm
from compiler.passes.fuse_activation import fuse_activation
from compiler.passes.fuse_bias import fuse_bias
from compiler.passes.remove_identity import remove_identity
from compiler.pdk import load_pdk
from helpers import ir_run_onnx_layout, ort_run, save_model

RNG = np.random.default_rng(5)
PDK = load_pdk("generic")
X = ("x", ["N", 3, 6, 6])


def conv(name, inp, out, cout=4, cin=3, bias=True, **kw):
    inits = [(f"{name}_W", RNG.normal(size=(cout, cin, 3, 3)))]
    ins = [inp, f"{name}_W"]
    if bias:
        inits.append((f"{name}_b", RNG.normal(size=cout)))
        ins.append(f"{name}_b")
    return helper.make_node("Conv", ins, [out], name=name, pads=[1, 1, 1, 1], **kw), inits


def ops(ir):
    return [ir.g.nodes[n]["op"] for n in ir.topo()]


def check(tmp_path, pass_fn, nodes, inits, out_dims, gone: str, x=X):
    p = save_model(tmp_path / "m.onnx", nodes, [x], [("y", out_dims)], inits)
    ir, _ = load_model(p)
    after = pass_fn(ir, CompileOptions(), PDK)
    verify_ir(after)
    assert gone in ops(ir) and gone not in ops(after), ops(after)
    feeds = {"x": RNG.normal(size=[4 if d == "N" else d for d in x[1]])}
    (want,), (got,) = ort_run(p, feeds), ir_run_onnx_layout(after, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    return after


def test_remove_identity(tmp_path):
    c, inits = conv("c1", "x", "h")
    shp = helper.make_node("Constant", [], ["s"], value=helper.make_tensor("v", 7, [4], [0, 4, 6, 6]))
    nodes = [c, helper.make_node("Identity", ["h"], ["i"], name="id"), shp,
             helper.make_node("Reshape", ["i", "s"], ["r"], name="noop_reshape"),
             helper.make_node("Transpose", ["r"], ["t"], name="noop_t", perm=[0, 1, 2, 3]),
             helper.make_node("Relu", ["t"], ["y"], name="act")]
    after = check(tmp_path, remove_identity, nodes, inits, ["N", 4, 6, 6], "identity")
    assert ops(after) == ["input", "conv", "act", "output"]


@pytest.mark.parametrize("layer", ["conv", "gemm", "input_offset"])
def test_fuse_bias(tmp_path, layer):
    if layer == "conv":
        c, inits = conv("c1", "x", "h", bias=False)
        nodes = [c, helper.make_node("Add", ["h", "cb"], ["y"], name="bias_add")]
        inits.append(("cb", RNG.normal(size=(1, 4, 1, 1))))
        check(tmp_path, fuse_bias, nodes, inits, ["N", 4, 6, 6], "add_const")
    else:
        x = ("x", ["N", 5])
        mm = helper.make_node("MatMul", ["xo" if layer == "input_offset" else "x", "W"], ["h"], name="mm")
        inits = [("W", RNG.normal(size=(5, 3))), ("c", RNG.normal(size=(5,) if layer == "input_offset" else (3,)))]
        nodes = ([helper.make_node("Add", ["x", "c"], ["xo"], name="offset"), mm,
                  helper.make_node("Relu", ["h"], ["y"], name="r")] if layer == "input_offset"
                 else [mm, helper.make_node("Add", ["h", "c"], ["y"], name="bias_add")])
        check(tmp_path, fuse_bias, nodes, inits, ["N", 3], "add_const", x=x)


@pytest.mark.parametrize("layer", ["conv", "gemm"])
def test_fold_batchnorm(tmp_path, layer):
    C = 4 if layer == "conv" else 3
    bn_inits = [("g", RNG.uniform(0.5, 2, C)), ("be", RNG.normal(size=C)), ("mu", RNG.normal(size=C)),
                ("var", RNG.uniform(0.1, 2, C))]
    bn = helper.make_node("BatchNormalization", ["h", "g", "be", "mu", "var"], ["y"], name="bn", epsilon=1e-3)
    if layer == "conv":
        c, inits = conv("c1", "x", "h")
        check(tmp_path, fold_batchnorm, [c, bn], inits + bn_inits, ["N", 4, 6, 6], "batchnorm")
    else:
        g = helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1)
        check(tmp_path, fold_batchnorm, [g, bn], [("W", RNG.normal(size=(3, 5))), ("b", RNG.normal(size=3))]
              + bn_inits, ["N", 3], "batchnorm", x=("x", ["N", 5]))


def test_batchnorm_without_layer_stays_digital(tmp_path):
    bn = helper.make_node("BatchNormalization", ["x", "g", "be", "mu", "var"], ["y"], name="bn")
    p = save_model(tmp_path / "m.onnx", [bn], [X], [("y", ["N", 3, 6, 6])],
                   [("g", np.ones(3)), ("be", np.zeros(3)), ("mu", np.zeros(3)), ("var", np.ones(3))])
    ir, _ = load_model(p)
    assert "batchnorm" in ops(fold_batchnorm(ir, CompileOptions(), PDK))


@pytest.mark.parametrize("act", [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}), ("Tanh", {}),
                                 ("Clip", {})])
def test_fuse_activation(tmp_path, act):
    op, kw = act
    c, inits = conv("c1", "x", "h")
    ins = ["h"]
    if op == "Clip":
        inits += [("lo", np.array(-0.5)), ("hi", np.array(0.8))]
        ins += ["lo", "hi"]
    nodes = [c, helper.make_node(op, ins, ["y"], name="a", **kw)]
    after = check(tmp_path, fuse_activation, nodes, inits, ["N", 4, 6, 6], "act")
    assert ops(after) == ["input", "conv", "output"]


def const(name, value):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_v", 1, list(np.shape(value)), np.ravel(np.asarray(value, np.float32)).tolist()))


def test_fold_scale_after_layer_and_batchnorm(tmp_path):
    from compiler.passes.fold_scale import fold_scale

    c, inits = conv("c1", "x", "h")
    nodes = [c, const("k", RNG.uniform(0.5, 2, size=(1, 4, 1, 1))), helper.make_node("Mul", ["h", "k"], ["m"], name="mul"),
             const("d", RNG.uniform(0.5, 2, size=(4, 1, 1))), helper.make_node("Div", ["m", "d"], ["y"], name="div")]
    after = check(tmp_path, fold_scale, nodes, inits, ["N", 4, 6, 6], "mul_const")
    assert ops(after) == ["input", "conv", "output"]


def test_fold_scale_before_dense_and_grouped_conv(tmp_path):
    from compiler.passes.fold_scale import fold_scale

    c, inits = conv("c1", "s2", "h", cout=6, cin=1, group=3)
    nodes = [helper.make_node("Sub", ["x", "mu"], ["s1"], name="center"),
             const("k", RNG.uniform(0.5, 2, size=(3, 1, 1))), helper.make_node("Mul", ["k", "s1"], ["s2"], name="mul"),
             c, helper.make_node("Flatten", ["h"], ["f"], name="fl"),
             const("k2", RNG.uniform(0.5, 2, size=(216,))), helper.make_node("Mul", ["f", "k2"], ["g"], name="mul2"),
             helper.make_node("Gemm", ["g", "W"], ["y"], name="fc", transB=1)]
    inits = inits + [("mu", RNG.normal(size=(3, 1, 1))), ("W", RNG.normal(size=(5, 216)))]
    after = check(tmp_path, fold_scale, nodes, inits, ["N", 5], "mul_const")
    # the centring stays an offset (padding would not be offset in the conv), the scales are folded
    assert ops(after).count("mul_const") == 0 and "add_const" in ops(after)


def test_scale_that_fits_nothing_stays_a_digital_unit(tmp_path):
    from compiler.passes.fold_scale import fold_scale

    c, inits = conv("c1", "x", "h")
    nodes = [c, helper.make_node("Relu", ["h"], ["r"], name="act"),
             const("k", RNG.uniform(0.5, 2, size=(4, 6, 6))), helper.make_node("Mul", ["r", "k"], ["y"], name="mul")]
    p = save_model(tmp_path / "m.onnx", nodes, [X], [("y", ["N", 4, 6, 6])], inits)
    ir, _ = load_model(p)
    after = fold_scale(ir, CompileOptions(), PDK)
    assert "mul_const" in ops(after)


def test_add_after_batchnorm_folds_into_its_shift(tmp_path):
    nodes = [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["h"], name="bn"),
             const("k", RNG.normal(size=(3, 1, 1))), helper.make_node("Add", ["h", "k"], ["y"], name="add")]
    inits = [("g", RNG.uniform(0.5, 2, 3)), ("b", RNG.normal(size=3)), ("m", RNG.normal(size=3)),
             ("v", RNG.uniform(0.5, 2, 3))]
    after = check(tmp_path, fuse_bias, nodes, inits, ["N", 3, 6, 6], "add_const")
    assert ops(after) == ["input", "batchnorm", "output"]


@pytest.mark.parametrize("opset", [9, 13])
def test_merge_pad_into_conv(tmp_path, opset):
    from compiler.passes.merge_pad import merge_pad

    c, inits = conv("c1", "p", "y")
    if opset < 11:
        pad = helper.make_node("Pad", ["x"], ["p"], name="pad", pads=[0, 0, 1, 2, 0, 0, 0, 1])
    else:
        pad = helper.make_node("Pad", ["x", "pp"], ["p"], name="pad")
    pads = helper.make_node("Constant", [], ["pp"], value=helper.make_tensor("v", 7, [8], [0, 0, 1, 2, 0, 0, 0, 1]))
    p = save_model(tmp_path / "m.onnx", [pads, pad, c], [X], [("y", ["N", 4, 7, 9])], inits, opset=opset)
    ir, _ = load_model(p)
    after = merge_pad(ir, CompileOptions(), PDK)
    verify_ir(after)
    assert "pad" in ops(ir) and ops(after) == ["input", "conv", "output"]
    feeds = {"x": RNG.normal(size=(2, 3, 6, 6))}
    np.testing.assert_allclose(ir_run_onnx_layout(after, feeds)[0], ort_run(p, feeds)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["half_last", "half_first", "mul_inv_sqrt2", "half_of_sum", "half_inside",
                                  "erf_plus_one_first_x", "half_x_right"])
def test_fuse_gelu(tmp_path, form):
    """GELU as PyTorch exports it before opset 20 (Div, Erf, Add 1, Mul x, Mul 0.5, either order)
    becomes one gelu activation, which fuse_activation then moves into the layer before it."""
    from compiler.passes.fuse_gelu import fuse_gelu

    mk = helper.make_node
    inits = [("W", RNG.normal(size=(8, 12))), ("b", RNG.normal(size=12)), ("sqrt2", np.array(np.sqrt(2.0))),
             ("inv", np.array(1 / np.sqrt(2.0))), ("one", np.array(1.0)), ("half", np.array(0.5))]
    scaled = mk("Mul", ["z", "inv"], ["g1"]) if form == "mul_inv_sqrt2" else mk("Div", ["z", "sqrt2"], ["g1"])
    head = [mk("MatMul", ["x", "W"], ["m"], name="fc"), mk("Add", ["m", "b"], ["z"], name="bias"), scaled,
            mk("Erf", ["g1"], ["g2"], name="erf"), mk("Add", ["g2", "one"], ["g3"])]
    if form == "half_first":
        tail = [mk("Mul", ["z", "half"], ["zh"]), mk("Mul", ["zh", "g3"], ["y"])]
    elif form == "half_of_sum":          # 0.5 * (1 + erf) first, then * x
        tail = [mk("Mul", ["half", "g3"], ["g4"]), mk("Mul", ["g4", "z"], ["y"])]
    elif form == "half_inside":          # x * (0.5 + 0.5 * erf): the half split over the sum
        head = head[:-1] + [mk("Mul", ["g2", "half"], ["e2"]), mk("Add", ["half", "e2"], ["g3"])]
        tail = [mk("Mul", ["z", "g3"], ["y"])]
    elif form == "erf_plus_one_first_x":  # (x * (erf + 1)) * 0.5 with the operands swapped
        head = head[:-1] + [mk("Add", ["one", "g2"], ["g3"])]
        tail = [mk("Mul", ["g3", "z"], ["g4"]), mk("Mul", ["half", "g4"], ["y"])]
    elif form == "half_x_right":         # (1 + erf) * (x * 0.5)
        tail = [mk("Mul", ["half", "z"], ["zh"]), mk("Mul", ["g3", "zh"], ["y"])]
    else:
        tail = [mk("Mul", ["z", "g3"], ["g4"]), mk("Mul", ["g4", "half"], ["y"])]
    x = ("x", ["N", 5, 8])
    after = check(tmp_path, fuse_gelu, head + tail, inits, ["N", 5, 12], "host", x=x)
    assert ops(after).count("act") == 1 and "host" not in ops(after)
    fused = check(tmp_path, lambda ir, o, p: fuse_activation(fuse_bias(fuse_gelu(ir, o, p), o, p), o, p),
                  head + tail, inits, ["N", 5, 12], "add_const", x=x)
    (layer,) = [n for n in fused.topo() if fused.g.nodes[n]["op"] == "dense"]
    assert fused.g.nodes[layer]["attrs"]["activation"] == {"kind": "gelu"}


def test_gelu_lookalike_is_left_alone(tmp_path):
    """x * (1 + erf(x / 2)) * 0.5 is not a GELU: nothing is fused, and it still computes the same."""
    from compiler.passes.fuse_gelu import fuse_gelu

    mk = helper.make_node
    inits = [("two", np.array(2.0)), ("one", np.array(1.0)), ("half", np.array(0.5))]
    nodes = [mk("Div", ["x", "two"], ["g1"]), mk("Erf", ["g1"], ["g2"]), mk("Add", ["g2", "one"], ["g3"]),
             mk("Mul", ["x", "g3"], ["g4"]), mk("Mul", ["g4", "half"], ["y"])]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 6])], [("y", ["N", 6])], inits)
    ir, _ = load_model(p)
    assert ops(fuse_gelu(ir, CompileOptions(), PDK)) == ops(ir)


@pytest.mark.parametrize("op,attrs,opset", [("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20),
                                            ("HardSwish", {}, 14)])
def test_gelu_and_hardswish_operators_lower_to_activations(tmp_path, op, attrs, opset):
    from helpers import compare_with_ort

    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"], name="fc"), helper.make_node(op, ["m"], ["y"], **attrs)]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4, 8])], [("y", ["N", 4, 6])],
                   [("W", RNG.normal(size=(8, 6)) * 2)], opset=opset)
    ir = compare_with_ort(p, {"x": RNG.normal(size=(3, 4, 8))})
    assert "act" in ops(ir) and "host" not in ops(ir)


@pytest.mark.parametrize("shape,axes,keep,opset", [([5, 8], [1], 0, 17), ([4, 3, 3], [2, 3], 1, 13),
                                                   ([4, 3, 3], [1], 1, 18), ([6, 4], [-1], 0, 11)])
def test_reduce_mean_lowers_to_average_pooling(tmp_path, shape, axes, keep, opset):
    """ReduceMean over adjacent feature axes: a (reduced x 1) average pool of the operand seen as
    (before, reduced, after), between two reshapes; the chip's pooling unit computes it."""
    from helpers import compare_with_ort

    ins = ["x", "axes"] if opset >= 18 else ["x"]
    kw = {"keepdims": keep} if opset >= 18 else {"keepdims": keep, "axes": axes}
    red = [(a if a > 0 else a + len(shape) + 1) for a in axes]
    out = [1 if (k in red and keep) else d for k, d in enumerate(["N", *shape]) if k not in red or keep]
    nodes = [helper.make_node("ReduceMean", ins, ["y"], **kw)]
    if opset >= 18:   # axes is an int64 input
        from onnx import numpy_helper

        p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", *shape])], [("y", out)])
        import onnx

        m = onnx.load(p)
        m.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
        m.opset_import[0].version = opset
        onnx.save(m, p)
    else:
        p = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", *shape])], [("y", out)], opset=opset)
    ir = compare_with_ort(p, {"x": RNG.normal(size=(3, *shape))})
    assert "pool" in ops(ir) and "host" not in ops(ir)


def _through(ir, *passes):
    for p in passes:
        ir = p(ir, CompileOptions(), PDK)
        verify_ir(ir)
    return ir


def test_activation_moves_in_front_of_a_reshape_and_reshapes_fold():
    """A real PyTorch Conv1d -> ReLU -> MaxPool1d export (tests/data/exported/conv1d_kws.onnx): the
    1-D lift leaves conv -> reshape -> relu -> reshape between each layer and its activation. The
    activation moves in front of the reshape, the two reshapes fold into one that keeps the shape
    and vanish, and the ReLU reaches its convolution; the IR still computes what onnxruntime does."""
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "data" / "exported" / "conv1d_kws.onnx"
    ir, _ = load_model(p)
    after = _through(ir, remove_identity, fold_batchnorm, fuse_bias, fuse_activation)
    convs = [n for n in after.topo() if after.g.nodes[n]["op"] == "conv"]
    assert len(convs) == 3 and ops(ir).count("act") == 3 and "act" not in ops(after)
    assert all(after.g.nodes[c]["attrs"]["activation"]["kind"] == "relu" for c in convs)
    assert ops(after).count("reshape") < ops(ir).count("reshape")
    feeds = {"input": RNG.uniform(-1, 1, size=(1, 1, 128))}   # its batch is fixed at 1
    np.testing.assert_allclose(ir_run_onnx_layout(after, feeds)[0], ort_run(p, feeds)[0], rtol=1e-4, atol=1e-4)


def test_block_conv_reads_a_pooling_window_at_once(tmp_path):
    """designs/cnn_digits: conv1 (3x3, 8 channels, 8x8 positions) then ReLU and a 2x2 max pooling of
    stride 2 becomes a 4x4 convolution of stride 2 with 32 outputs (channel c at sub-position (dy,
    dx) is output 4c + 2dy + dx) over 4x4 positions, and the pooling a (4, 1) window over its
    (8, 4, 16) view: the same network (onnxruntime), a quarter of the reads, its MACs counted as the
    model's (mac_fraction 9/16). conv2, followed by no pooling, and everything under
    --conv-blocking off stay as they are."""
    from conftest import MLP
    from compiler.passes.block_conv import block_conv

    p = MLP.parent / "cnn_digits" / "model.onnx"
    ir, _ = load_model(p)
    pre = _through(ir, remove_identity, fuse_bias, fuse_activation)
    after = _through(pre, block_conv)
    convs = {after.g.nodes[n]["origin"]: after.g.nodes[n] for n in after.topo() if after.g.nodes[n]["op"] == "conv"}
    c1, c2 = convs["conv1"], convs["conv2"]
    assert c1["shape"] == (32, 4, 4) and c1["attrs"]["kernel"] == [4, 4] and c1["attrs"]["stride"] == [2, 2]
    assert c1["attrs"]["mac_fraction"] == 9 / 16 and c1["params"]["W"].shape == (32, 1, 4, 4)
    assert c2["shape"] == (16, 4, 4) and c2["attrs"]["kernel"] == [3, 3] and "mac_fraction" not in c2["attrs"]
    pool = next(after.g.nodes[n] for n in after.topo() if after.g.nodes[n]["op"] == "pool")
    assert pool["attrs"]["kernel"] == [4, 1] and pool["shape"] == (8, 1, 16)
    feeds = {"input": np.load(MLP.parent / "cnn_digits" / "calib.npy")[:16]}
    np.testing.assert_allclose(ir_run_onnx_layout(after, feeds)[0], ort_run(p, feeds)[0], rtol=1e-5, atol=1e-5)
    off = block_conv(pre, CompileOptions(conv_blocking="off"), PDK)
    assert off is pre or ops(off) == ops(pre)
    assert all(off.g.nodes[n]["attrs"]["kernel"] == [3, 3] for n in off.topo() if off.g.nodes[n]["op"] == "conv")


@pytest.mark.parametrize("case", ["more_tiles", "two_consumers", "overlapping_pool"])
def test_block_conv_leaves_what_would_not_pay_or_not_fit(tmp_path, case):
    """Not blocked: a layer whose blocked matrix needs more tiles (16 -> 32 channels: 144 x 32 on 64x64
    tiles is 3 tiles, 256 x 128 would be 16), a convolution whose output something else reads too,
    and a pooling whose windows overlap (3x3 of stride 2)."""
    from compiler.passes.block_conv import block_conv

    mk = helper.make_node
    cin, cout = (16, 32) if case == "more_tiles" else (3, 4)
    c, inits = conv("c1", "x", "h", cout=cout, cin=cin)
    k, s = ([3, 3], [2, 2]) if case == "overlapping_pool" else ([2, 2], [2, 2])
    nodes = [c, mk("Relu", ["h"], ["r"], name="act"),
             mk("MaxPool", ["r"], ["q"], name="pool", kernel_shape=k, strides=s)]
    ho = 2 if case == "overlapping_pool" else 3
    outs = [("q", ["N", cout, ho, ho])]
    if case == "two_consumers":
        outs.append(("r", ["N", cout, 6, 6]))
    x = ("x", ["N", cin, 6, 6])
    path = save_model(tmp_path / "m.onnx", nodes, [x], outs, inits)
    ir, _ = load_model(path)
    after = _through(ir, remove_identity, fuse_activation, block_conv)
    (cv,) = [after.g.nodes[n] for n in after.topo() if after.g.nodes[n]["op"] == "conv"]
    assert cv["attrs"]["kernel"] == [3, 3] and "mac_fraction" not in cv["attrs"]
