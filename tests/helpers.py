"""Test helpers: build small ONNX models and run them in onnxruntime and in the IR interpreter."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import load_model
from compiler.ir.interp import run_ir


def save_model(path: Path, nodes, inputs, outputs, inits=(), opset=13) -> Path:
    """inputs/outputs: [(name, dims)], dims may hold strings (symbolic)."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a, dtype=np.float32), n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def ort_run(path: Path, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})


def ir_run_onnx_layout(ir, feeds: dict) -> list[np.ndarray]:
    """Run the IR on ONNX-layout inputs (batch on each input's own axis); outputs in ONNX layout."""
    by_origin = {ir.g.nodes[n]["origin"]: n for n in ir.nodes_of("input")}
    ir_feeds = {}
    for name, x in feeds.items():
        n = by_origin[name]
        ax = ir.g.nodes[n]["attrs"]["batch_axis"]
        ir_feeds[n] = np.asarray(x, np.float64)[None] if ax is None else np.moveaxis(np.asarray(x, np.float64), ax, 0)
    outs = run_ir(ir, ir_feeds)
    res = []
    for n in ir.nodes_of("output"):
        ax = ir.g.nodes[n]["attrs"]["batch_axis"]
        y = outs[n]
        res.append(y[0] if ax is None else np.moveaxis(y, 0, ax))
    return res


def assert_clean_error(r, *needles, out=None):
    """A CLI run that failed cleanly: exit 2, one line 'error: ...' holding every needle, no
    traceback; with ``out``, no output folder and no temporary sibling left behind."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in r.stderr
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temp dir left behind"


def compare_with_ort(path: Path, feeds: dict, rtol=1e-5, atol=1e-5):
    ir, _ = load_model(path)
    want = ort_run(path, feeds)
    got = ir_run_onnx_layout(ir, feeds)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return ir


def mobilenet_style(path: Path, seed: int = 0) -> Path:
    """A small MobileNet-style network built with onnx.helper (opset 13): a zero Pad, a strided
    stem conv with BatchNormalization and ReLU6 (Clip with min/max as inputs), a depthwise 3x3, a
    pointwise 1x1, a grouped 3x3 (group 4), global average pooling and a Gemm classifier.
    Input [N, 3, 16, 16] in [0, 1]; output [N, 10]."""
    rng = np.random.default_rng(seed)

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    def bn(name, x, y, c):
        inits.extend([(f"{name}_g", rng.uniform(0.5, 1.5, c)), (f"{name}_b", rng.normal(size=c) * 0.1),
                      (f"{name}_m", rng.normal(size=c) * 0.1), (f"{name}_v", rng.uniform(0.5, 1.5, c))])
        return helper.make_node("BatchNormalization", [x, f"{name}_g", f"{name}_b", f"{name}_m", f"{name}_v"], [y],
                                name=name)

    inits = [("w_stem", w(8, 3, 3, 3)), ("w_dw", w(8, 1, 3, 3)), ("w_pw", w(16, 8, 1, 1)),
             ("w_gc", w(16, 4, 3, 3)), ("b_gc", rng.normal(size=16) * 0.1), ("w_fc", w(10, 16)),
             ("b_fc", rng.normal(size=10) * 0.1), ("lo", np.array(0.0)), ("hi", np.array(6.0))]
    relu6 = [helper.make_node("Clip", [f"{k}_bn", "lo", "hi"], [f"{k}_a"], name=f"{k}_relu6") for k in ("stem", "dw", "pw")]
    nodes = [
        helper.make_node("Constant", [], ["pads"], value=helper.make_tensor("pv", TensorProto.INT64, [8],
                                                                            [0, 0, 1, 1, 0, 0, 1, 1])),
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
        helper.make_node("Conv", ["xp", "w_stem"], ["stem_c"], name="stem", strides=[2, 2]),
        bn("stem_bn", "stem_c", "stem_bn", 8), relu6[0],
        helper.make_node("Conv", ["stem_a", "w_dw"], ["dw_c"], name="dw", group=8, pads=[1, 1, 1, 1]),
        bn("dw_bn", "dw_c", "dw_bn", 8), relu6[1],
        helper.make_node("Conv", ["dw_a", "w_pw"], ["pw_c"], name="pw"),
        bn("pw_bn", "pw_c", "pw_bn", 16), relu6[2],
        helper.make_node("Conv", ["pw_a", "w_gc", "b_gc"], ["gc_c"], name="gconv", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["gc_c"], ["gc_a"], name="gc_relu"),
        helper.make_node("GlobalAveragePool", ["gc_a"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["y"], name="fc", transB=1),
    ]
    return save_model(path, nodes, [("x", ["N", 3, 16, 16])], [("y", ["N", 10])], inits)


def mixer_block(path: Path, seed: int = 0, tokens: int = 8, dim: int = 16, classes: int = 5) -> Path:
    """A transformer/mixer-style block built with onnx.helper (opset 17): LayerNormalization,
    per-token Q/K/V projections (3-D MatMul), Transpose, runtime x runtime MatMul for the attention
    scores and their Softmax, a residual add, an MLP with GELU written as Erf, ReduceMean over the
    tokens and a Gemm classifier. Input [N, tokens, dim] (signed); output [N, classes]."""
    rng = np.random.default_rng(seed)

    def w(*s):
        return rng.normal(size=s) / np.sqrt(s[0])

    scalar = [("inv_sqrt_d", np.array(1.0 / np.sqrt(dim))), ("sqrt2", np.array(np.sqrt(2.0))),
              ("one", np.array(1.0)), ("half", np.array(0.5))]
    inits = [("ln1_s", rng.uniform(0.5, 1.5, dim)), ("ln1_b", rng.normal(size=dim) * 0.1),
             ("ln2_s", rng.uniform(0.5, 1.5, dim)), ("ln2_b", rng.normal(size=dim) * 0.1),
             ("Wq", w(dim, dim)), ("Wk", w(dim, dim)), ("Wv", w(dim, dim)), ("Wo", w(dim, dim)),
             ("bo", rng.normal(size=dim) * 0.1), ("W1", w(dim, 2 * dim)), ("b1", rng.normal(size=2 * dim) * 0.1),
             ("W2", w(2 * dim, dim)), ("b2", rng.normal(size=dim) * 0.1), ("Wc", w(classes, dim)),
             ("bc", rng.normal(size=classes) * 0.1), *scalar]
    mk = helper.make_node
    nodes = [
        mk("LayerNormalization", ["x", "ln1_s", "ln1_b"], ["h"], name="ln1", axis=-1),
        mk("MatMul", ["h", "Wq"], ["q"], name="q_proj"), mk("MatMul", ["h", "Wk"], ["k"], name="k_proj"),
        mk("MatMul", ["h", "Wv"], ["v"], name="v_proj"),
        mk("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
        mk("MatMul", ["q", "kt"], ["s"], name="scores"),
        mk("Mul", ["s", "inv_sqrt_d"], ["s2"], name="scale"),
        mk("Softmax", ["s2"], ["a"], name="attn", axis=-1),
        mk("MatMul", ["a", "v"], ["o"], name="mix"),
        mk("MatMul", ["o", "Wo"], ["o1"], name="o_proj"), mk("Add", ["o1", "bo"], ["o2"], name="o_bias"),
        mk("Add", ["x", "o2"], ["r"], name="residual"),
        mk("LayerNormalization", ["r", "ln2_s", "ln2_b"], ["h2"], name="ln2", axis=-1),
        mk("MatMul", ["h2", "W1"], ["m1"], name="fc1"), mk("Add", ["m1", "b1"], ["m2"], name="fc1_bias"),
        mk("Div", ["m2", "sqrt2"], ["g1"], name="gelu_div"), mk("Erf", ["g1"], ["g2"], name="gelu_erf"),
        mk("Add", ["g2", "one"], ["g3"], name="gelu_add"), mk("Mul", ["m2", "g3"], ["g4"], name="gelu_mul"),
        mk("Mul", ["g4", "half"], ["g5"], name="gelu_half"),
        mk("MatMul", ["g5", "W2"], ["f1"], name="fc2"), mk("Add", ["f1", "b2"], ["f2"], name="fc2_bias"),
        mk("ReduceMean", ["f2"], ["pool"], name="token_mean", axes=[1], keepdims=0),
        mk("Gemm", ["pool", "Wc", "bc"], ["y"], name="head", transB=1),
    ]
    return save_model(path, nodes, [("x", ["N", tokens, dim])], [("y", ["N", classes])], inits, opset=17)


def edit_manifest(out: Path, change) -> None:
    """Change a compiled design's manifest.json in place (``change(manifest)``)."""
    m = json.loads((out / "manifest.json").read_text())
    change(m)
    (out / "manifest.json").write_text(json.dumps(m))


def rehash(out: Path, rel: str) -> None:
    """A hostile edit that also fixes the file's digest in the manifest (the manifest is the root of trust)."""
    digest = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    edit_manifest(out, lambda m: [f.update(sha256=digest) for f in m["files"] if f["path"] == rel])
