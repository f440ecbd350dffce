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
