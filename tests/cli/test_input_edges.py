"""Every input validated at the edge (issue 20's reproducers): one line on stderr and exit 2, or,
where the input is valid, a run that works; nothing left behind."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import MLP, amsc
from helpers import assert_clean_error, save_model

RNG = np.random.default_rng(0)
W = RNG.normal(size=(8, 16)).astype(np.float32)


def _gemm(*extra_inputs):
    return helper.make_node("Gemm", ["x", "W", *extra_inputs], ["y"], name="fc", transB=1)


def _x(tmp_path, rows=8, cols=16, dtype=np.float32, name="x.npy"):
    p = tmp_path / name
    np.save(p, RNG.uniform(0, 1, (rows, cols)).astype(dtype))
    return p


# ------------------------------------------------------------------ numeric options

@pytest.mark.parametrize("cmd, args, needle", [
    ("compile", ["--input-range", "0", "inf"], "--input-range"),
    ("compile", ["--input-range", "nan", "1"], "--input-range"),
    ("compile", ["--wire-r", "inf", "--parasitics"], "--wire-r"),
    ("verify", ["--tolerance-lsb", "inf"], "--tolerance-lsb"),
    ("verify", ["--timeout", "nan"], "--timeout"),
    ("evaluate", ["--sigma", "nan", "--inputs", "x.npy"], "--sigma"),
])
def test_non_finite_options(mlp_out, tmp_path, cmd, args, needle):
    target = [MLP / "model.onnx", "-o", tmp_path / "o"] if cmd == "compile" else [mlp_out]
    r = amsc(cmd, *target, *args)
    assert r.returncode == 2 and "finite" in r.stderr and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ------------------------------------------------------------------ input arrays and labels

@pytest.mark.parametrize("make, needle", [
    (lambda p: np.save(p, np.zeros((0, 64), np.float32)), "empty"),
    (lambda p: p.write_bytes(b""), "empty or truncated"),
    # a zip archive's signature on a damaged file, and an .npz archive under a .npy name
    (lambda p: p.write_bytes(b"PK\x03\x04 not an archive"), "a damaged .npz archive"),
    (lambda p: np.savez(open(p, "wb"), x=np.zeros((4, 64), np.float32)), "not an .npz archive"),
    (lambda p: np.save(p, np.zeros((4, 64), np.int64)), "int64"),
    (lambda p: np.save(p, np.zeros((4, 64), np.float16)), "float16"),
    (lambda p: np.save(p, np.zeros((4, 64), bool)), "bool"),
    (lambda p: np.save(p, np.full((4, 64), np.nan, np.float32)), "NaN/Inf"),
    (lambda p: np.save(p, np.zeros((4, 8, 9), np.float32)), "expected [N, 64]"),
    (lambda p: np.save(p, np.zeros((4, 63), np.float32)), "expected [N, 64]"),
])
@pytest.mark.parametrize("cmd", ["run", "evaluate", "report", "rtl-sim"])
def test_bad_input_arrays(mlp_out, tmp_path, make, needle, cmd):
    p = tmp_path / "x.npy"
    make(p)
    r = amsc(cmd, mlp_out, "--inputs", p, *(["--no-synth"] if cmd == "report" else []))
    assert_clean_error(r, "x.npy", needle)


def test_empty_calibration(tmp_path):
    p = tmp_path / "c.npy"
    np.save(p, np.zeros((0, 64), np.float32))
    r = amsc("compile", MLP / "model.onnx", "-o", tmp_path / "o", "--calibration", p)
    assert_clean_error(r, "c.npy", "empty", out=tmp_path / "o")


@pytest.mark.parametrize("labels, needle", [
    (np.full(20, -1), "label -1"),
    (np.full(20, 99), "label 99"),
    (np.full(20, np.nan), "float64"),
    (np.arange(20) * 0.5, "float64"),
    (np.zeros(19, np.int64), "19 labels for 20 inputs"),
])
@pytest.mark.parametrize("cmd", ["evaluate", "rtl-sim"])
def test_bad_labels(mlp_out, digits, tmp_path, labels, needle, cmd):
    x = tmp_path / "x.npy"
    np.save(x, np.load(digits / "x.npy")[:20].astype(np.float32))
    y = tmp_path / "y.npy"
    np.save(y, labels)
    r = amsc(cmd, mlp_out, "--inputs", x, "--labels", y)
    assert_clean_error(r, "y.npy", needle)


# ------------------------------------------------------------------ model tensors

@pytest.mark.parametrize("weights, where", [
    ({"b": np.r_[3e38, np.zeros(7)]}, "bias 'b'"),
    ({"W": np.full((8, 16), 1e31)}, "weight"),
])
def test_weights_beyond_the_chips_range(tmp_path, weights, where):
    inits = {"W": W, **weights}
    model = save_model(tmp_path / "m.onnx", [_gemm("b") if "b" in inits else _gemm()], [("x", ["N", 16])],
                       [("y", ["N", 8])], list(inits.items()))
    r = amsc("compile", model, "-o", tmp_path / "o")
    assert_clean_error(r, "m.onnx", "beyond +-1e+30", out=tmp_path / "o")


def test_yaml_weights_of_1e300(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\n"
                 "nodes: [{name: f, op: dense, weight: [[1.0e+300, 1.0], [2.0, 3.0]]}]\noutputs: [f]\n")
    assert_clean_error(amsc("compile", p, "-o", tmp_path / "o"), "m.yaml", "beyond", out=tmp_path / "o")


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.bool_, np.uint8])
def test_weight_of_a_type_its_operator_does_not_take(tmp_path, dtype):
    g = helper.make_graph([_gemm()], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                          initializer=[numpy_helper.from_array((W * 3).astype(dtype), "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "m.onnx")
    r = amsc("compile", tmp_path / "m.onnx", "-o", tmp_path / "o")
    assert_clean_error(r, "m.onnx", "a type its operator does not take", out=tmp_path / "o")


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.bool_, np.uint8])
def test_cast_weights_of_any_type_compile_and_run(tmp_path, dtype):
    """The same weights through a Cast to float: a valid model (constant folding takes it)."""
    g = helper.make_graph([helper.make_node("Cast", ["Wi"], ["W"], to=TensorProto.FLOAT), _gemm()], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                          initializer=[numpy_helper.from_array((W * 3).astype(dtype), "Wi")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "m.onnx")
    assert amsc("compile", tmp_path / "m.onnx", "-o", tmp_path / "o").returncode == 0
    r = amsc("run", tmp_path / "o", "--inputs", _x(tmp_path))
    assert r.returncode == 0, r.stderr


def test_duplicate_node_names(tmp_path):
    n1 = helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1)
    n2 = helper.make_node("Relu", ["h"], ["y"], name="fc")
    model = save_model(tmp_path / "m.onnx", [n1, n2], [("x", ["N", 16])], [("y", ["N", 8])], [("W", W)])
    assert_clean_error(amsc("compile", model, "-o", tmp_path / "o"), "node name 'fc' is used by two nodes",
                       out=tmp_path / "o")


# ------------------------------------------------------------------ graph inputs and batch dimensions

def test_an_unused_graph_input_is_left_out(tmp_path):
    model = save_model(tmp_path / "m.onnx", [_gemm()], [("x", ["N", 16]), ("unused", ["N", 4])], [("y", ["N", 8])],
                       [("W", W)])
    assert amsc("compile", model, "-o", tmp_path / "o").returncode == 0
    r = amsc("run", tmp_path / "o", "--inputs", _x(tmp_path))
    assert r.returncode == 0 and "SNR" in r.stderr, r.stderr


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_fixed_batch_models_run_any_number_of_rows(tmp_path, batch):
    """torch.onnx.export writes batch 1 by default; the float reference runs in chunks of the fixed batch."""
    model = save_model(tmp_path / "m.onnx", [_gemm()], [("x", [batch, 16])], [("y", [batch, 8])], [("W", W)])
    assert amsc("compile", model, "-o", tmp_path / "o").returncode == 0
    out = tmp_path / "y.npy"
    r = amsc("run", tmp_path / "o", "--inputs", _x(tmp_path, rows=8), "-o", out)
    assert r.returncode == 0 and "SNR" in r.stderr, r.stderr
    snr = float(r.stderr.split("SNR ")[1].split(" dB")[0])
    assert snr > 20 and np.load(out).shape == (8, 8)


def test_zero_batch_is_refused(tmp_path):
    model = save_model(tmp_path / "m.onnx", [_gemm()], [("x", [0, 16])], [("y", [0, 8])], [("W", W)])
    assert_clean_error(amsc("compile", model, "-o", tmp_path / "o"), "dimension of size 0", out=tmp_path / "o")


def test_two_runtime_inputs_are_refused_by_compile(tmp_path):
    nodes = [_gemm(), helper.make_node("Add", ["y", "z"], ["s"])]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 16]), ("z", ["N", 8])], [("s", ["N", 8])],
                       [("W", W)])
    assert_clean_error(amsc("compile", model, "-o", tmp_path / "o"), "2 runtime inputs", out=tmp_path / "o")


# ------------------------------------------------------------------ YAML limits

def test_yaml_nested_20000_deep(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("amsc_graph: 1\ninputs: " + "[" * 20000 + "]" * 20000 + "\n")
    assert_clean_error(amsc("compile", p, "-o", tmp_path / "o"), "deep.yaml", "nested deeper", out=tmp_path / "o")


@pytest.mark.parametrize("head", ["amsc_graph: 1", "amsc_dynamics: 1"])
def test_yaml_alias_bomb(tmp_path, head):
    lines = [head, "a0: &a0 [0,0,0,0,0,0,0,0,0,0]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    lines += ["inputs: [{name: x, shape: [4]}]", "nodes: [{name: f, op: dense, weight: *a9}]", "outputs: [f]"]
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    r = amsc("compile", p, "-o", tmp_path / "o", timeout=60)
    assert_clean_error(r, "bomb.yaml", "aliases", out=tmp_path / "o")


# ------------------------------------------------------------------ continuous-time designs

@pytest.fixture(scope="module")
def spiral(tmp_path_factory):
    from conftest import ROOT

    out = tmp_path_factory.mktemp("spiral") / "o"
    r = amsc("compile", ROOT / "designs" / "neural_ode_spiral" / "dynamics.yaml", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("cmd", ["run", "report", "rtl-sim"])
def test_network_commands_name_a_dynamics_design(spiral, tmp_path, cmd):
    r = amsc(cmd, spiral, "--inputs", _x(tmp_path, rows=2, cols=2))
    assert_clean_error(r, "is a continuous-time design", f"'{cmd}' runs networks")


@pytest.mark.parametrize("flags", [("--finetune-data", "x.npy", "y.npy"), ("--stuck-rates", "0.1", "0.1")])
def test_monte_carlo_options_on_a_dynamics_design_are_refused(spiral, tmp_path, flags):
    r = amsc("evaluate", spiral, "--inputs", _x(tmp_path, rows=2, cols=2), *flags)
    assert_clean_error(r, flags[0], "is a continuous-time design", "applies to networks")


def test_scheduler_on_a_dynamics_design_is_refused(spiral):
    assert_clean_error(amsc("verify", spiral, "--scheduler", "tcp://127.0.0.1:1"), "--scheduler", "dynamics design")


def test_dynamics_window_beyond_the_time_step_budget(tmp_path):
    from conftest import ROOT

    src = (ROOT / "designs" / "neural_ode_spiral" / "dynamics.yaml").read_text()
    lines = [ln if not ln.startswith("t_end:") else "t_end: 9.0e+8" for ln in src.splitlines()]
    p = tmp_path / "long.yaml"
    p.write_text("\n".join(lines) + "\n")
    for f in (ROOT / "designs" / "neural_ode_spiral").glob("*.npy"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    r = amsc("compile", p, "-o", tmp_path / "o", timeout=60)
    assert_clean_error(r, "long.yaml", "t_end", "fastest time constant", "may be at most", out=tmp_path / "o")


@pytest.mark.parametrize("flags, needle", [(("--tile", "32x32"), "--tile"), (("--parasitics",), "--parasitics"),
                                           (("--spare-rows", "2"), "--spare-rows"), (("--dac-bits", "6"), "--dac-bits"),
                                           (("--calibration", "x.npy"), "--calibration"), (("--lanes", "4"), "--lanes")])
def test_network_options_on_a_dynamics_model_are_refused(tmp_path, flags, needle):
    """A compile option of networks that a continuous-time model has no use for is refused, not ignored."""
    from conftest import ROOT

    r = amsc("compile", ROOT / "designs" / "neural_ode_spiral" / "dynamics.yaml", "-o", tmp_path / "o", *flags)
    assert_clean_error(r, needle, "does not apply to the continuous-time model dynamics.yaml", out=tmp_path / "o")
