"""Bad input: one line 'error: <file>: <what>' on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from conftest import MLP, amsc
from helpers import assert_clean_error, save_model




def compile_err(tmp_path, model, *extra):
    out = tmp_path / "out"
    return amsc("compile", model, "-o", out, *extra), out


def edited_pdk(tmp_path, src, old: str, new: str):
    """A copy of the PDK folder ``src`` in ``tmp_path/mypdk`` with ``old`` (which its pdk.yaml must
    hold) replaced by ``new`` in its pdk.yaml."""
    pdk = tmp_path / "mypdk"
    pdk.mkdir()
    for f in src.iterdir():
        (pdk / f.name).write_text(f.read_text())
    text = (src / "pdk.yaml").read_text()
    assert old in text
    (pdk / "pdk.yaml").write_text(text.replace(old, new))
    return pdk


def test_missing_file(tmp_path):
    r, out = compile_err(tmp_path, tmp_path / "nope.onnx")
    assert_clean_error(r, "nope.onnx", "no such file", out=out)


def test_non_onnx_bytes(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00\xffthis is not a protobuf\x13\x37" * 10)
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "junk.onnx", "not an ONNX model", out=out)


def test_text_file_as_onnx(tmp_path):
    p = tmp_path / "readme.onnx"
    p.write_text("hello world\n")
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "readme.onnx", out=out)


@pytest.mark.parametrize("frac", [0.05, 0.3, 0.6, 0.95, 0.999])
def test_truncated_onnx(tmp_path, frac):
    data = (MLP / "model.onnx").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: int(len(data) * frac)])
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "cut.onnx", out=out)


def test_yaml_not_a_mapping(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("- 1\n- 2\n")
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.yaml", "mapping", out=out)


def test_yaml_python_object_tag(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "m.yaml"
    p.write_text(f"amsc_graph: 1\ninputs: !!python/object/apply:os.system ['touch {marker}']\n")
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.yaml", "invalid YAML", out=out)
    assert not marker.exists()


def test_weight_shape_mismatch(tmp_path):
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 5])], [("y", ["N", 3])], [("W", np.ones((3, 4)))])
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.onnx", "node 'fc'", "shape", out=out)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_weights(tmp_path, bad):
    W = np.ones((3, 5))
    W[1, 2] = bad
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 5])], [("y", ["N", 3])], [("W", W)])
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.onnx", "node 'fc'", "NaN/Inf", "'W'", out=out)


def test_nothing_maps_to_a_crossbar(tmp_path):
    # an operator without a lowering runs on the host; a model made only of such is refused
    node = helper.make_node("Softplus", ["x"], ["y"], name="sp1")
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 5])], [("y", ["N", 5])])
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.onnx", "no node maps to a crossbar", "Softplus", out=out)


@pytest.mark.parametrize("opset", [22, 30])
def test_opset_out_of_range(tmp_path, opset):
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    p = save_model(tmp_path / "m.onnx", [node], [("x", ["N", 5])], [("y", ["N", 5])], opset=opset)
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "m.onnx", f"opset {opset}", "7..21", out=out)


def test_unknown_pdk(tmp_path):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--pdk", "tsmc_n1")
    assert_clean_error(r, "tsmc_n1", "unknown PDK", "generic", out=out)


def test_invalid_pdk_field(tmp_path):
    pdk = edited_pdk(tmp_path, MLP.parents[1] / "pdk_templates" / "generic", "levels: 16", "levels: 1")
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--pdk", pdk)
    assert_clean_error(r, "pdk.yaml", "device.levels", out=out)


@pytest.mark.parametrize("tile", ["0", "0x64", "64x0", "abc", "64x63", "64x", "-4x4"])
def test_bad_tile_size(tmp_path, tile):
    r, out = compile_err(tmp_path, MLP / "model.onnx", f"--tile={tile}")
    assert_clean_error(r, "--tile", out=out)


def test_output_path_is_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("keep me")
    r = amsc("compile", MLP / "model.onnx", "-o", f)
    assert_clean_error(r, "taken", "not a directory")
    assert f.read_text() == "keep me"


def test_output_dir_not_from_amsc_is_not_replaced(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    r = amsc("compile", MLP / "model.onnx", "-o", d)
    assert_clean_error(r, "mine", "refusing")
    assert (d / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("lanes, needle", [("0", "must be positive"), ("257", "<= 256"), ("two", "not an integer")])
def test_bad_lanes(tmp_path, lanes, needle):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--lanes", lanes)
    assert_clean_error(r, "--lanes", needle, out=out)


def test_bad_route_banks(tmp_path):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--route-banks", "4")
    assert_clean_error(r, "--route-banks", "invalid choice", "'lanes', 'off'", out=out)


@pytest.mark.parametrize("stages, needle", [("0", "must be positive"), ("65", "<= 64"), ("two", "not an integer")])
def test_bad_pipeline(tmp_path, stages, needle):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--pipeline", stages)
    assert_clean_error(r, "--pipeline", needle, out=out)


def test_too_many_tiles_refused_before_writing(tmp_path):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--tile", "8x8", "--max-tiles", "10")
    assert_clean_error(r, "--max-tiles 10", out=out)


def test_verify_bad_inputs(tmp_path):
    assert_clean_error(amsc("verify", tmp_path / "none"), "not a directory")
    (tmp_path / "empty").mkdir()
    assert_clean_error(amsc("verify", tmp_path / "empty"), "manifest.json", "missing")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    assert_clean_error(amsc("verify", tmp_path / "empty"), "manifest.json", "unreadable")
    assert_clean_error(amsc("verify", tmp_path / "empty", "--jobs", "0"), "--jobs")


def test_usage_errors_are_one_line():
    assert_clean_error(amsc("compile"), "model")
    assert_clean_error(amsc("frobnicate"), "frobnicate")


def test_list_ops():
    r = amsc("--list-ops")
    assert r.returncode == 0
    for op in ("Conv", "Gemm", "MaxPool", "BatchNormalization", "Softmax", "dense"):
        assert f"  {op}\n" in r.stdout


def _conv_model(tmp_path, x_dims, w_shape, **attrs):
    node = helper.make_node("Conv", ["x", "W"], ["y"], name="convA", **attrs)
    return save_model(tmp_path / "c.onnx", [node], [("x", x_dims)], [("y", ["N", w_shape[0], "H", "W"])],
                      [("W", np.ones(w_shape))])


@pytest.mark.parametrize("case,needles", [
    (dict(x_dims=["N", 2, 8, 8], w_shape=(4, 2, 3, 3), auto_pad="SAME_MIDDLE"), ["auto_pad", "SAME_MIDDLE"]),
    (dict(x_dims=["N", 4, 8, 8], w_shape=(4, 2, 3, 3), group=3), ["group=3"]),
    (dict(x_dims=["N", 6, 8, 8], w_shape=(4, 2, 3, 3), group=2), ["4 input channels", "group=2", "has 6"]),
    (dict(x_dims=["N", 2, 4, 4], w_shape=(4, 2, 7, 7)), ["kernel_shape", "larger than"]),
    (dict(x_dims=["N", 3, 8, 8], w_shape=(4, 2, 3, 3)), ["2 input channels", "has 3"]),
    (dict(x_dims=["N", 2, 8, 8], w_shape=(4, 2, 3, 3), strides=[0, 1]), ["strides"]),
])
def test_bad_conv_attributes(tmp_path, case, needles):
    r, out = compile_err(tmp_path, _conv_model(tmp_path, **case))
    assert_clean_error(r, "c.onnx", "node 'convA' (Conv)", *needles, out=out)


def test_bad_pool_attributes(tmp_path):
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[1, 1])
    p = save_model(tmp_path / "p.onnx", [node], [("x", ["N", 2, 8, 8])], [("y", ["N", 2, 4, 4])])
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "node 'mp' (MaxPool)", "pads=[1, 1]", out=out)


def test_huge_tensor_refused(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("amsc_graph: 1\ninputs: [{name: x, shape: [6000, 6000]}]\n"
                 "nodes: [{name: f, op: flatten}]\noutputs: [f]\n")
    r, out = compile_err(tmp_path, p)
    assert_clean_error(r, "big.yaml", "elements per sample", out=out)


def test_input_range_must_be_increasing(tmp_path):
    r, out = compile_err(tmp_path, MLP / "model.onnx", "--input-range", "1", "-1")
    assert_clean_error(r, "--input-range", "LO 1 must be below HI -1", out=out)


def test_full_disk_mid_compile_leaves_nothing(tmp_path, monkeypatch, capsys):
    """ENOSPC on the 20th file: one line, exit 2, no output folder and no temporary folder."""
    import builtins
    import errno

    from compiler import cli
    from compiler.design import writer as plan

    calls = {"n": 0}

    def full_disk_open(path, mode="r", *a, **kw):
        if "w" in mode and ".tmp-" in str(path):
            calls["n"] += 1
            if calls["n"] >= 20:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode, *a, **kw)

    monkeypatch.setattr(plan, "open", full_disk_open, raising=False)
    out = tmp_path / "out"
    code = cli.main(["compile", str(MLP / "model.onnx"), "-o", str(out), "--tile", "16x16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no space left" in err[0] and "nothing was written" in err[0], err
    assert calls["n"] == 20
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_mid_compile_leaves_nothing(tmp_path, sig):
    """A signal while the files are being written: one line, exit 2, nothing left behind."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    rng = np.random.default_rng(0)
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="wide", transB=1)
    model = save_model(tmp_path / "wide.onnx", [node], [("x", ["N", 2048])], [("y", ["N", 1024])],
                       [("W", rng.normal(size=(1024, 2048)))])
    out = tmp_path / "out"
    # SIGINT at its default in the child: a suite started in the background (where the shell ignores
    # SIGINT, and Python then keeps it ignored) would otherwise never interrupt the compile
    proc = subprocess.Popen([sys.executable, "-m", "compiler.cli", "compile", str(model), "-o", str(out)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        tmp = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
        if tmp and (tmp[0] / "spice" / "tiles").is_dir():   # mid-way through writing the netlists
            break
        time.sleep(0.02)
    assert proc.poll() is None, "compile finished before the signal could be sent"
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "interrupted; nothing was written" in lines[0], err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("edit, needle", [(("r_load: 2.0e+4", "r_load: -1"), "analog.pair.r_load"),
                                          (("v_g_top: 1.6", "v_g_top: 2.5"), "v_g_lo < v_g_top <= v_g_hi"),
                                          (("vdd: 1.8                    #", "vdd: fast                   #"),
                                           "analog.vdd")])
def test_bad_analog_section(tmp_path, edit, needle):
    """The analog stages of sky130_1t1r's continuous-time circuits are PDK data, checked as the rest is."""
    from conftest import ROOT

    pdk = edited_pdk(tmp_path, ROOT / "compiler" / "pdk_templates" / "sky130_1t1r", *edit)
    r, out = compile_err(tmp_path, ROOT / "designs" / "hopfield_digits" / "dynamics.yaml", "--pdk", pdk)
    assert_clean_error(r, "pdk.yaml", needle, out=out)


def test_map_memory_a_pdk_cannot_hold(tmp_path):
    """--map-memory sram on a chip clocked faster than half the macro's rate; an unknown choice."""
    from conftest import ROOT

    pdk = edited_pdk(tmp_path, ROOT / "compiler" / "pdk_templates" / "generic", "clock_mhz: 100.0", "clock_mhz: 300.0")
    fire = ROOT / "tests" / "data" / "exported" / "fire_net.onnx"
    r, out = compile_err(tmp_path, fire, "--pdk", pdk, "--map-memory", "sram")
    assert_clean_error(r, "--map-memory", "531 MHz", "300 MHz", out=out)
    r, out = compile_err(tmp_path, fire, "--map-memory", "dram")
    assert r.returncode == 2 and "--map-memory" in r.stderr and "Traceback" not in r.stderr
