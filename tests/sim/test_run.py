"""amsc run: the compiled network end to end (chip segments + host segments in onnxruntime), with
the ideal, MNA and ngspice engines, against the integer model, the lowered IR and the float model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import amsc, require_tool
from helpers import assert_clean_error, mixer_block, mobilenet_style


def _report(stderr: str) -> dict:
    m = re.search(r"SNR (-?[\d.]+|inf) dB against float(?:, top-1 agreement ([\d.]+) %)?", stderr)
    assert m, stderr
    return {"snr": float(m.group(1)), "top1": float(m.group(2)) if m.group(2) else None}


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    d = tmp_path_factory.mktemp("mb")
    model = mobilenet_style(d / "mb.onnx")
    np.save(d / "x.npy", np.random.default_rng(4).uniform(0, 1, size=(16, 3, 16, 16)))
    assert amsc("compile", model, "-o", d / "out").returncode == 0
    return d


@pytest.fixture(scope="module")
def mixer(tmp_path_factory):
    d = tmp_path_factory.mktemp("mx")
    model = mixer_block(d / "mx.onnx")
    np.save(d / "x.npy", np.random.default_rng(5).normal(size=(12, 8, 16)))
    r = amsc("compile", model, "-o", d / "out", "--input-range", "-4", "4")
    assert r.returncode == 0, r.stderr
    assert "partition (segments in execution order)" in r.stderr and "host/seg0.onnx" in r.stderr
    return d


def test_run_ideal_equals_the_integer_chip_model(mobilenet):
    from compiler.backend.qmodel import input_codes, load_program, run_program

    out, x = mobilenet / "out", np.load(mobilenet / "x.npy")
    r = amsc("run", out, "--inputs", mobilenet / "x.npy", "-o", mobilenet / "y.npy")
    assert r.returncode == 0, r.stderr
    assert "integer datapath" in r.stderr
    prog = load_program(out)
    want = run_program(prog, input_codes(prog, x)) * prog["output_scale"]
    np.testing.assert_array_equal(np.load(mobilenet / "y.npy"), want.astype(np.float32))
    rep = _report(r.stderr)
    assert rep["top1"] is not None and rep["snr"] > 5


@pytest.mark.parametrize("engine", ["mna", "ngspice"])
def test_run_circuit_engines_agree_with_ideal(mobilenet, engine):
    require_tool("libngspice")
    r = amsc("run", mobilenet / "out", "--inputs", mobilenet / "x.npy", "--engine", engine, "--limit", "4",
             "-o", mobilenet / f"y_{engine}.npy")
    assert r.returncode == 0, r.stderr
    amsc("run", mobilenet / "out", "--inputs", mobilenet / "x.npy", "--limit", "4", "-o", mobilenet / "y4.npy")
    prog = json.loads((mobilenet / "out" / "rtl" / "program.json").read_text())
    ideal, got = np.load(mobilenet / "y4.npy"), np.load(mobilenet / f"y_{engine}.npy")
    # ideal wires: the circuit currents equal the conductance sums to ~1e-12, so the ADC codes match
    # except, at most, where a value sits on a rounding boundary; allow one output LSB there
    assert np.max(np.abs(got - ideal)) <= prog["output_scale"] * 1.0001
    assert np.mean(got == ideal) > 0.95


def test_mixer_block_runs_through_host_segments(mixer):
    from compiler.eval.run import Design
    from compiler.ir.interp import run_ir

    out = mixer / "out"
    m = json.loads((out / "manifest.json").read_text())
    kinds = [s["kind"] for s in m["partition"]["segments"]]
    assert kinds.count("host") >= 3 and kinds[-1] == "chip"
    homes = {n["name"]: n["home"] for n in m["partition"]["nodes"]}
    assert homes["scores"] == "host" and homes["ln1"] == "host" and homes["attn"] == "host"
    # the score scaling between two host nodes goes with them (no stream out and back for it)
    assert homes["scale"] == "host" and kinds.count("host") == 3
    # GELU written with Erf is one table activation of fc1, ReduceMean the pooling unit: both on the chip
    assert homes["residual"] == "digital" and homes["fc1_r0c0"] == "crossbar" and homes["token_mean_2"] == "digital"
    assert not any(n["origin"] == "gelu_erf" for n in m["partition"]["nodes"])
    assert m["rtl_datapath"]["generated"], m["rtl_datapath"]
    # every host segment file is a valid model that onnxruntime loads
    import onnxruntime as ort

    for s in m["partition"]["segments"]:
        if s["kind"] == "host":
            ort.InferenceSession(str(out / s["file"]), providers=["CPUExecutionProvider"])
    r = amsc("verify", out, "--jobs", "2", "--vectors", "8")
    assert r.returncode == 0, r.stderr
    r = amsc("run", out, "--inputs", mixer / "x.npy", "-o", mixer / "y.npy")
    assert r.returncode == 0, r.stderr
    assert "integer datapath" in r.stderr
    rep = _report(r.stderr)
    assert rep["top1"] >= 90 and rep["snr"] > 15
    # without the integer datapath, the segment-wise float run equals the lowered IR node by node
    x = np.load(mixer / "x.npy")
    d = Design(out)
    want = list(run_ir(d.ir, {d.input: x}).values())[0]
    np.testing.assert_allclose(d._run_segments(x, None)[0], want, rtol=1e-4, atol=1e-5 * np.max(np.abs(want)))


def test_pipeline_of_a_chip_with_host_segments_is_refused(mixer, tmp_path):
    """The host's turn between chip segments is part of every input: --pipeline on such a design is
    one line and exit 2, nothing written."""
    r = amsc("compile", mixer / "mx.onnx", "-o", tmp_path / "o", "--input-range", "-4", "4", "--pipeline", "2")
    assert_clean_error(r, "--pipeline", "host segments", out=tmp_path / "o")


def test_mixer_chip_top_lints_and_is_bit_exact_across_host_segments(mixer):
    """The chip of a design with host segments between chip segments: one top with a tagged host
    link, a stream at every boundary; Verilator -Wall is clean and every stream the chip sends
    (to the attention's host segments, the LayerNorms and the logits) equals the numpy model's."""
    import subprocess

    from compiler.backend.qmodel import load_program

    require_tool("iverilog", "vvp", "verilator")
    out = mixer / "out"
    prog = load_program(out)
    kinds = [st["kind"] for st in prog["steps"]]
    assert kinds.count("host") == 3 and kinds.count("send") >= 3 and kinds.count("recv") >= 4
    assert [st["tag"] for st in prog["steps"] if st["kind"] in ("send", "recv")] == \
        list(range(kinds.count("send") + kinds.count("recv")))
    assert any(st["kind"] == "layer" and st["tokens"] and st["positions"] == 8 for st in prog["steps"])
    assert any(st["kind"] == "layer" and st["act"]["kind"] == "lut" for st in prog["steps"])   # the GELU
    top = [p.stem for p in (out / "rtl").glob("*_top.v")][0]
    files = [str(out / "rtl" / f) for f in (out / "rtl" / "files.f").read_text().split()]
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = amsc("rtl-sim", out, "--inputs", mixer / "x.npy")
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    rep = json.loads((out / "rtl_sim.json").read_text())
    assert rep["bit_exact"] and rep["streams"] == kinds.count("send") + kinds.count("recv")
    sent = sum(int(np.prod(st["src"]["shape"])) for st in prog["steps"] if st["kind"] == "send")
    assert rep["outputs_per_image"] == sent


def test_run_bad_inputs(mixer, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8, 15)))
    r = amsc("run", mixer / "out", "--inputs", tmp_path / "wrong.npy")
    assert_clean_error(r, "wrong.npy", "[3, 8, 15]", "[N, 8, 16]")
    # a host segment damaged after compile: the manifest's digest catches it ...
    import shutil

    out = tmp_path / "out"
    shutil.copytree(mixer / "out", out)
    seg = out / "host" / "seg0.onnx"
    seg.write_bytes(b"\x08garbage" + seg.read_bytes()[:40])
    r = amsc("run", out, "--inputs", mixer / "x.npy")
    assert_clean_error(r, "seg0.onnx", "sha256 differs")
    # ... and if the manifest was rewritten to match, onnxruntime's refusal is one clean line
    from compiler.design.writer import sha256

    mpath = out / "manifest.json"
    m = json.loads(mpath.read_text())
    for f in m["files"]:
        if f["path"] == "host/seg0.onnx":
            f["sha256"] = sha256(seg.read_bytes())
    mpath.write_text(json.dumps(m))
    r = amsc("run", out, "--inputs", mixer / "x.npy")
    assert_clean_error(r, "seg0.onnx", "onnxruntime cannot load this host segment")
