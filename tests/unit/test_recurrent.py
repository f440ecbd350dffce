"""LSTM and GRU on crossbars (frontend/onnx/recurrent.py, ir/ops/recurrent.py): every form ONNX
defines that the chip's cell computes is lowered to recurrent layers whose float model matches
onnxruntime's own LSTM/GRU kernels, through the canonicalize passes and after quantization and
tiling; the forms it does not compute run on the host with the reason in the IR."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import helper

from compiler.driver import apply_overrides
from compiler.frontend import load_model
from compiler.ir.interp import run_ir
from compiler.options import CompileOptions
from compiler.passes.pipeline import run_pipeline
from compiler.pdk import load_pdk
from helpers import compare_with_ort, ir_run_onnx_layout, ort_run, save_model

T, I, H = 6, 5, 4


def _rnn_model(tmp_path, op: str, layout: int = 0, direction: str = "forward", outputs=("Y",), init: bool = False,
               seed: int = 0, **attrs):
    rng = np.random.default_rng(seed)
    G = 4 if op == "LSTM" else 3
    D = 2 if direction == "bidirectional" else 1
    inits = [("W", rng.normal(size=(D, G * H, I)) * 0.5), ("R", rng.normal(size=(D, G * H, H)) * 0.5),
             ("B", rng.normal(size=(D, 2 * G * H)) * 0.3)]
    ins = ["x", "W", "R", "B", ""]
    if init:
        inits.append(("h0", _state(rng.uniform(-0.5, 0.5, size=(D, 1, H)), layout)))
        ins.append("h0")
        if op == "LSTM":
            inits.append(("c0", _state(rng.uniform(-1, 1, size=(D, 1, H)), layout)))
            ins.append("c0")
    names = {"Y": "y", "Y_h": "yh", "Y_c": "yc"}
    outs = [names[o] if o in outputs else "" for o in ("Y", "Y_h", "Y_c")[:3 if op == "LSTM" else 2]]
    while outs and not outs[-1]:
        outs.pop()
    if op == "GRU":
        attrs.setdefault("linear_before_reset", 1)
    node = helper.make_node(op, ins, outs, name="rnn", hidden_size=H, direction=direction, layout=layout, **attrs)
    x_dims = [1, T, I] if layout else [T, 1, I]
    shapes = {"y": [1, T, D, H] if layout else [T, D, 1, H], "yh": [1, D, H] if layout else [D, 1, H],
              "yc": [1, D, H] if layout else [D, 1, H]}
    tmp_path.mkdir(parents=True, exist_ok=True)
    return save_model(tmp_path / "m.onnx", [node], [("x", x_dims)], [(o, shapes[o]) for o in outs if o], inits,
                      opset=14), x_dims


def _state(s, layout):
    return s.transpose(1, 0, 2) if layout else s


def _reference(tmp_path, x, op, layout, direction, outputs=("Y",), init=False, **attrs):
    """onnxruntime's outputs; its CPU kernels refuse layout 1, so a layout-1 model is checked against
    its layout-0 twin (the same weights) on the transposed sequence, outputs transposed back."""
    twin, _ = _rnn_model(tmp_path / "twin", op, 0, direction, outputs=outputs, init=init, **attrs)
    ys = ort_run(twin, {"x": x.transpose(1, 0, 2) if layout else x})
    if not layout:
        return ys
    named = [o for o in ("Y", "Y_h", "Y_c") if o in outputs]
    return [y.transpose(2, 0, 1, 3) if o == "Y" else y.transpose(1, 0, 2) for o, y in zip(named, ys)]


def _check(tmp_path, op, layout, direction, outputs=("Y",), init=False, atol=1e-6, **attrs):
    p, x_dims = _rnn_model(tmp_path, op, layout, direction, outputs=outputs, init=init, **attrs)
    x = _x(x_dims)
    ir, _ = load_model(p)
    want = _reference(tmp_path, x, op, layout, direction, outputs, init, **attrs)
    got = ir_run_onnx_layout(ir, {"x": x})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol)
    return ir, p, x


def _x(x_dims, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, size=x_dims)


@pytest.mark.parametrize("op, layout, direction", list(itertools.product(
    ("LSTM", "GRU"), (0, 1), ("forward", "reverse", "bidirectional"))))
def test_every_layout_and_direction_lowers_to_recurrent_layers(tmp_path, op, layout, direction):
    ir, _, _ = _check(tmp_path, op, layout, direction, outputs=("Y", "Y_h"), init=True)
    ops = [ir.g.nodes[n]["op"] for n in ir.topo()]
    assert ops.count("rnn") == (2 if direction == "bidirectional" else 1) and "host" not in ops
    rnns = [ir.g.nodes[n] for n in ir.nodes_of("rnn")]
    assert [d["attrs"]["recurrent"]["reverse"] for d in rnns] == \
        ([False, True] if direction == "bidirectional" else [direction == "reverse"])


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_quantized_and_tiled_recurrent_layer_is_its_float_model(tmp_path, op):
    """After quantize and tile the layer reads its tiles inside the time loop: at 16-bit levels it
    is the float network; on 8-row tiles the input and recurrent rows split onto their own tiles."""
    ir, p, x = _check(tmp_path, op, 1, "bidirectional", outputs=("Y", "Y_h"), init=True)
    opts = CompileOptions(weight_bits=16, tile_rows=8, tile_cols=8)
    tiled = run_pipeline(ir, opts, apply_overrides(load_pdk("generic"), opts), upto="tile")
    layers = [n for n in tiled.nodes_of("accum") if tiled.g.nodes[n]["attrs"].get("recurrent")]
    assert len(layers) == 2
    for n in layers:
        tiles = [tiled.g.nodes[t]["attrs"] for t in tiled.inputs(n)]
        # rows [0, 5) and [5, 9) never share a tile
        assert {(t["row0"], t["row1"]) for t in tiles} == {(0, I), (I, I + H)}
    want = _reference(tmp_path, x, op, 1, "bidirectional", ("Y", "Y_h"), True)
    for got, w in zip(ir_run_onnx_layout(tiled, {"x": x}), want):
        np.testing.assert_allclose(got, w, atol=2e-3)


def test_sequence_first_batch_is_kept_through_the_state_reshapes(tmp_path):
    """The exporters' [T, D, N, H] -> Transpose -> Reshape [T, 1, D*H] of a sequence-first stack keeps
    the batch axis (per sample [T, D*H]) and feeds the next layer on the chip."""
    rng = np.random.default_rng(3)
    D = 2
    inits = [("W1", rng.normal(size=(D, 4 * H, I))), ("R1", rng.normal(size=(D, 4 * H, H))),
             ("W2", rng.normal(size=(D, 4 * H, D * H))), ("R2", rng.normal(size=(D, 4 * H, H)))]
    nodes = [helper.make_node("LSTM", ["x", "W1", "R1"], ["y1"], name="l1", hidden_size=H, direction="bidirectional"),
             helper.make_node("Transpose", ["y1"], ["t1"], name="t1", perm=[0, 2, 1, 3]),
             helper.make_node("Constant", [], ["shp"], name="shp", value=helper.make_tensor("v", 7, [3], [T, 1, D * H])),
             helper.make_node("Reshape", ["t1", "shp"], ["r1"], name="r1"),
             helper.make_node("LSTM", ["r1", "W2", "R2"], ["y2"], name="l2", hidden_size=H, direction="bidirectional")]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", [T, 1, I])], [("y2", [T, D, 1, H])], inits, opset=14)
    ir = compare_with_ort(p, {"x": _x([T, 1, I])}, atol=1e-6)
    assert len(ir.nodes_of("rnn")) == 4 and not ir.nodes_of("host")


@pytest.mark.parametrize("case, attrs, needle", [
    ("gru_linear_before_reset_0", {"op": "GRU", "linear_before_reset": 0}, "linear_before_reset"),
    ("lstm_cell_state_read", {"op": "LSTM", "outputs": ("Y", "Y_c")}, "Y_c"),
    ("lstm_clip", {"op": "LSTM", "clip": 3.0}, "clip"),
    ("lstm_input_forget", {"op": "LSTM", "input_forget": 1}, "input_forget"),
    ("gru_relu_activations", {"op": "GRU", "activations": ["Sigmoid", "Relu"]}, "activations"),
])
def test_forms_the_cell_does_not_compute_run_on_the_host(tmp_path, case, attrs, needle):
    attrs = dict(attrs)
    op = attrs.pop("op")
    outputs = attrs.pop("outputs", ("Y",))
    p, x_dims = _rnn_model(tmp_path, op, 0, "forward", outputs=outputs, **attrs)
    ir = compare_with_ort(p, {"x": _x(x_dims)}, atol=1e-6)
    hosts = ir.nodes_of("host")      # one per output read
    assert len(hosts) == len(outputs) and not ir.nodes_of("rnn")
    for h in hosts:
        assert ir.g.nodes[h]["attrs"]["op_type"] == op and needle in ir.g.nodes[h]["attrs"]["reason"]


def test_runtime_initial_state_runs_on_the_host(tmp_path):
    rng = np.random.default_rng(4)
    inits = [("W", rng.normal(size=(1, 3 * H, I))), ("R", rng.normal(size=(1, 3 * H, H)))]
    nodes = [helper.make_node("GRU", ["x", "W", "R", "", "", "h0"], ["y"], name="g", hidden_size=H,
                              linear_before_reset=1)]
    p = save_model(tmp_path / "m.onnx", nodes, [("x", [T, "N", I]), ("h0", [1, "N", H])], [("y", [T, 1, "N", H])],
                   inits, opset=14)
    ir, _ = load_model(p)
    (h,) = ir.nodes_of("host")
    assert "initial_h" in ir.g.nodes[h]["attrs"]["reason"] and "runtime" in ir.g.nodes[h]["attrs"]["reason"]


def test_last_state_alone_needs_no_sequence_output(tmp_path):
    """A classifier on Y_h alone (PyTorch's h_n): no node joins the per-step states, none dangles."""
    ir, _, _ = _check(tmp_path, "LSTM", 1, "bidirectional", outputs=("Y_h",))
    assert sorted(ir.g.nodes[n]["op"] for n in ir.topo()) == ["concat", "input", "output", "rnn", "rnn", "slice",
                                                              "slice"]
    assert run_ir(ir, {ir.nodes_of("input")[0]: _x([3, T, I])})   # any batch


@pytest.mark.parametrize("layout", [0, 1])
def test_symbolic_sequence_length_is_one_line_and_exit_2(tmp_path, capsys, layout):
    """A sequence exported with a dynamic length: the chip runs a fixed number of steps, so the
    compile stops with one line naming the node and the input, and writes nothing."""
    from compiler.cli import main
    rng = np.random.default_rng(5)
    inits = [("W", rng.normal(size=(1, 4 * H, I))), ("R", rng.normal(size=(1, 4 * H, H)))]
    node = helper.make_node("LSTM", ["x", "W", "R"], ["", "yh"], name="enc", hidden_size=H, layout=layout)
    x_dims = [1, "T", I] if layout else ["T", 1, I]
    p = save_model(tmp_path / "m.onnx", [node], [("x", x_dims)], [("yh", [1, 1, H])], inits, opset=14)
    assert main(["compile", str(p), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'enc'" in err and "sequence length" in err and "'x'" in err
    assert not (tmp_path / "out").exists()
