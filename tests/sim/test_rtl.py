"""RTL tests: verilator -Wall lint, yosys synthesis, and the whole chip (scan-chain weight
programming, gather, tiles, accumulators, requantizers, pooling, host streams) simulated in Icarus
Verilog on held-out digits, bit-exact against the numpy model of the quantized network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from compiler.backend.verilog import scan_registers
from compiler.verify import rtlsim
from conftest import MLP, amsc, require_tool
from helpers import rehash

CNN = MLP.parent / "cnn_digits"
SIGNED = MLP.parent / "cnn_signed"


@pytest.fixture(scope="module")
def cnn_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "out"
    r = amsc("compile", CNN / "model.onnx", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


#: the units' tests run at 3 lanes: more than one, and a count that divides few of their sizes, so a
#: unit's last clock has idle lanes (the bundled designs run at the default)
UNIT_LANES = ("--lanes", "3")


def _compile_lint_sim(model, inputs, out, *compile_args, sram: bool = False, simulator: str = "auto") -> dict:
    """Compile ``model`` (at UNIT_LANES unless ``compile_args`` say), lint its chip with verilator
    -Wall, run rtl-sim on ``inputs`` (in ``simulator``) and require a bit-exact result and the counted
    clocks; returns the manifest. ``sram``: first with every interleaved map in SRAM macros
    (``--map-memory sram``), which must hold some map, each part and bank one instance of the macro
    module, in Verilator: the design then runs in both simulators where auto takes Icarus for it."""
    if sram:
        m = _compile_lint_sim(model, inputs, out.parent / f"{out.name}_sram", *compile_args, "--map-memory", "sram",
                              simulator="verilator")
        srams = m["rtl_datapath"]["srams"]
        assert srams and m["rtl_datapath"]["map_memory"] == "sram"
        top = next((out.parent / f"{out.name}_sram" / "rtl").glob("*_top.v")).read_text()
        assert len(re.findall(r"^\s+\w+_sram #", top, re.M)) == sum(x["B"] * x["banks"] for x in srams.values())
        for name in srams:    # no flip-flop array is left of those maps
            assert not re.search(rf"reg .* mem_{name}_i\d+ ", top), name
    lanes = () if "--lanes" in compile_args else UNIT_LANES
    assert amsc("compile", model, "-o", out, *compile_args, *lanes).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rtl_datapath"]["generated"], manifest["rtl_datapath"]
    top = [p.stem for p in (out / "rtl").glob("*_top.v")][0]
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *_files(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = amsc("rtl-sim", out, "--inputs", inputs, "--simulator", simulator)
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    _cycles_as_counted(out)
    return manifest


def _cycles_as_counted(out) -> dict:
    """The clocks rtl-sim measured per input, in a stream and through the chip, are the compiler's
    count (backend/verilog.rtl_cycles)."""
    rep = json.loads((out / "rtl_sim.json").read_text())
    assert rep["cycles_per_input"] == rep["cycles_per_input_predicted"] > 0, rep
    assert rep["latency_cycles"] == rep["latency_cycles_predicted"] > 0, rep
    assert rep["cycles_rel_err"] == 0.0
    return rep


def _files(out, sub=""):
    base = out / "rtl"
    return [str(base / f) for f in (base / sub / "files.f").read_text().split()]


@pytest.fixture(scope="module")
def signed_out(tmp_path_factory):
    """designs/cnn_signed: LeakyReLU between the layers and a centred input in [-1, 1]."""
    out = tmp_path_factory.mktemp("signed") / "out"
    r = amsc("compile", SIGNED / "model.onnx", "-o", out, *(SIGNED / "compile.args").read_text().split())
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("which", ["mlp_out", "cnn_out", "signed_out"])
def test_verilator_lint_wall_clean(which, request):
    require_tool("verilator")
    out = request.getfixturevalue(which)
    top = [p.stem for p in (out / "rtl").glob("*_top.v")][0]
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *_files(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


def test_yosys_synthesizes_digital_part(mlp_out):
    require_tool("yosys")
    script = f"read_verilog {' '.join(_files(mlp_out))}; synth -top mlp_digits_top; stat"
    r = subprocess.run(["yosys", "-q", "-p", script, "-l", "/dev/stdout"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(re.findall(r"Number of cells:\s+(\d+)", r.stdout)[-1]) > 1000, r.stdout[-2000:]


@pytest.mark.parametrize("which,images", [("mlp_out", 60), ("cnn_out", 50), ("signed_out", 50)])
def test_chip_is_bit_exact_on_digits(which, images, request, digits):
    require_tool("iverilog", "vvp")
    out = request.getfixturevalue(which)
    xs = "x_centred.npy" if which == "signed_out" else "x.npy"
    r = amsc("rtl-sim", out, "--inputs", digits / xs, "--labels", digits / "y.npy", "--limit", images)
    assert r.returncode == 0, r.stderr
    rep = _cycles_as_counted(out)
    assert rep["bit_exact"] and rep["images"] == images and rep["mismatches"] == 0
    assert rep["accuracy_rtl"] == rep["accuracy_model"] > 0.9
    assert rep["lanes"] == 4     # the default


def test_lanes_change_the_clocks_not_the_codes(tmp_path, digits):
    """--lanes 1 and --lanes 5 (a count that divides neither the layers' inputs nor their outputs):
    both chips bit-exact on cnn_digits; each takes the clocks the compiler counted, and five lanes
    take fewer in the gather and the stores (where conv1 keeps the 2x2 pooling's maxima: no pooling
    step) and the same in the reads and on the link; in the handshake fewer, for where the gather and
    the stores no longer outlast a read, the next read starts a clock after the macro's
    (verilog.armed_reads)."""
    require_tool("iverilog", "vvp")
    cyc = {}
    for lanes in (1, 5):
        out = tmp_path / f"l{lanes}"
        # every layer at one ADC share, so that the reads are the same (the lanes change the stages'
        # slack, and with it the shares --adc-balance gives)
        assert amsc("compile", CNN / "model.onnx", "-o", out, "--lanes", str(lanes), "--adc-balance", "off").returncode == 0
        r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--limit", 12)
        assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
        rep = _cycles_as_counted(out)
        assert rep["lanes"] == lanes and rep["accuracy_rtl"] == rep["accuracy_model"]
        cyc[lanes] = json.loads((out / "manifest.json").read_text())["rtl_datapath"]["cycles_per_input"]
    for part in ("gather", "store"):
        assert cyc[5][part] < cyc[1][part] / 2.5, (part, cyc)
    assert cyc[5]["pool"] == cyc[1]["pool"] == 0
    for part in ("read", "link"):
        assert cyc[5][part] == cyc[1][part] > 0
    assert 0 < cyc[5]["handshake"] < cyc[1]["handshake"], cyc
    assert cyc[1]["total"] / cyc[5]["total"] > 1.5


def test_lanes_only_where_they_pay_and_conv1_reads_a_pooling_window_at_once(cnn_out, tmp_path, digits):
    """--lanes L is at most L: each unit gets the fewest lanes whose clocks stay within 1 % of its
    clocks at L (verilog.step_lanes), and one lane fewer on a unit would cost more than 1 %.
    With --conv-blocking off, cnn_digits' conv1 gathers 9 codes and stores 8 while its tiles read (26
    clocks a position), so it runs one lane; its pooling, conv2 and fc keep four; that chip is
    bit-exact and within 1 % of the all-four-lanes one in latency and interval. By default conv1 and
    the 2x2 pooling after it read a pooling window at once (passes/block_conv.py): 16 reads of a
    16 x 32 matrix instead of 64 of 9 x 8, and the chip takes an input more than three times as often.
    The pooling is then a maximum over each group of four columns of conv1 (its channel's four
    sub-positions), which conv1's stores keep (qmodel._pool_group): no pooling step, no map of the
    unpooled outputs, and one input's latency shorter by the pooling's clocks."""
    from compiler.backend.verilog import LANE_PAYBACK, rtl_cycles, step_cycles

    require_tool("iverilog", "vvp")
    off = tmp_path / "off"
    assert amsc("compile", CNN / "model.onnx", "-o", off, "--conv-blocking", "off").returncode == 0
    r = amsc("rtl-sim", off, "--inputs", digits / "x.npy", "--limit", 6)
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    _cycles_as_counted(off)
    chips = {}
    for name, out in (("off", off), ("default", cnn_out)):
        dp = json.loads((out / "manifest.json").read_text())["rtl_datapath"]
        prog = json.loads((out / "rtl" / "program.json").read_text())
        steps = prog["steps"]
        kinds = ["recv", "layer", "pool", "layer", "layer", "send"] if name == "off" else \
            ["recv", "layer", "layer", "layer", "send"]
        assert [st["kind"] for st in steps] == kinds
        cyc = dp["cycles_per_input"]
        # each layer's macros read in 2 + 3 M clocks, M its tiles' ADC share (--adc-balance)
        share = {t["name"]: t["adc_share"] for t in json.loads((out / "manifest.json").read_text())["tiles"]}
        latency = [2 + 3 * share[st["tiles"][0]["name"]] if st["kind"] == "layer" else 0 for st in steps]
        assert cyc["read"] == sum(st["positions"] * lat for st, lat in zip(steps, latency) if st["kind"] == "layer")
        clocks = lambda k, n: sum(step_cycles(steps[k], n, latency[k]).values())
        assert dp["lanes"] == 4 and len(dp["step_lanes"]) == len(steps)
        for k, (st, n) in enumerate(zip(steps, dp["step_lanes"])):
            assert (n == 0) == (st["kind"] in ("recv", "send"))
            if n:
                assert clocks(k, n) <= clocks(k, 4) * (1 + LANE_PAYBACK)
                # the next fewer lanes it could take (a layer's divide the 4: its DAC registers' banks)
                fewer = [m for m in range(1, n) if st["kind"] != "layer" or 4 % m == 0]
                assert not fewer or clocks(k, fewer[-1]) > clocks(k, 4) * (1 + LANE_PAYBACK)
        full = rtl_cycles(prog, 4, latency, dp["pipeline"])
        assert rtl_cycles(prog, dp["step_lanes"], latency, dp["pipeline"]) == cyc
        for key in ("interval", "latency"):
            assert full[key] <= cyc[key] <= full[key] * (1 + LANE_PAYBACK), (key, full[key], cyc[key])
        chips[name] = (dp, steps[1])
    (dp_off, conv1_off), (dp, conv1) = chips["off"], chips["default"]
    assert dp_off["step_lanes"] == [0, 1, 4, 4, 4, 0]
    assert (conv1_off["positions"], conv1_off["rows"], conv1_off["cols"]) == (64, 9, 8)
    assert (conv1["positions"], conv1["rows"], conv1["cols"]) == (16, 16, 32)
    assert all(t["mac_fraction"] == 9 / 16 for t in conv1["tiles"])
    assert "group" not in conv1_off and conv1["group"] == 4 and conv1["dst"]["shape"] == [8, 1, 16]
    assert dp["cycles_per_input"]["pool"] == 0 < dp_off["cycles_per_input"]["pool"]
    assert dp["cycles_per_input"]["interval"] * 3 < dp_off["cycles_per_input"]["interval"]
    assert dp["cycles_per_input"]["latency"] < dp_off["cycles_per_input"]["latency"]


def test_pipeline_takes_an_input_every_slowest_stage_and_stays_bit_exact(tmp_path, digits):
    """cnn_digits as a pipeline (--pipeline 3): its steps split into stages, each its own sequencer,
    the maps between them double-buffered. Lint-clean, bit-exact on held-out digits streamed back to
    back, and the clocks are the compiler's: an input every slowest stage's period, fewer than one
    input at a time takes, and the first through all stages in the same clocks plus a handover each."""
    require_tool("iverilog", "vvp", "verilator")
    out = tmp_path / "p"
    # every layer at one ADC share, so that one input at a time (below) takes the same clocks
    assert amsc("compile", CNN / "model.onnx", "-o", out, "--pipeline", "3", "--adc-balance", "off").returncode == 0
    top = (out / "rtl" / "cnn_digits_top.v").read_text()
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "cnn_digits_top", *_files(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--limit", 12)
    assert r.returncode == 0 and "bit-exact" in r.stderr and "3-stage pipeline" in r.stderr, r.stderr
    rep = _cycles_as_counted(out)
    assert rep["accuracy_rtl"] == rep["accuracy_model"] and rep["pipeline_stages"] == 3
    dp = json.loads((out / "manifest.json").read_text())["rtl_datapath"]
    cyc, stages = dp["cycles_per_input"], dp["pipeline"]
    assert stages == len(cyc["stages"]) == 3
    bounds = [x["steps"] for x in cyc["stages"]]
    assert bounds[0][0] == 0 and bounds[-1][1] == len(json.loads((out / "rtl" / "program.json").read_text())["steps"])
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert rep["cycles_per_input"] == cyc["interval"] == max(x["period"] for x in cyc["stages"]) < cyc["total"]
    assert rep["latency_cycles"] == cyc["latency"] == cyc["total"] + stages - 1
    # each stage its own sequencer; a map read in the stage after its writer's has two banks, each
    # stage addressing its input's
    assert all(f"begin : stage_{s}" in top for s in range(stages))
    assert re.search(r"reg \[7:0\] mem_\w+ \[0:1\]\[0:\d+\];", top) and "[bk_" in top
    # --pipeline 1: one sequencer, one input at a time, every input the whole count
    one = tmp_path / "one"
    assert amsc("compile", CNN / "model.onnx", "-o", one, "--pipeline", "1").returncode == 0
    assert "begin : stage_" not in (one / "rtl" / "cnn_digits_top.v").read_text()
    r = amsc("rtl-sim", one, "--inputs", digits / "x.npy", "--limit", 4)
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    rep1 = _cycles_as_counted(one)
    assert rep1["cycles_per_input"] == rep1["latency_cycles"] == cyc["total"] and rep1["pipeline_stages"] == 1


def test_verilator_runs_the_same_testbench_bit_exactly(cnn_out, digits, monkeypatch):
    """--simulator verilator: the chip compiled to C++ gives the same outputs as the numpy model
    (and so as Icarus); the report says which simulator ran, its build and run seconds. The weights
    and the requantizer registers are preloaded (--scan preload, what an ImageNet-sized run takes):
    the other tests shift them through the chain. On two cores a design this small compiles as one
    unit of C++; the parallel build of a larger design gives the same codes."""
    require_tool("verilator")
    r = amsc("rtl-sim", cnn_out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--limit", 40,
             "--simulator", "verilator", "--scan", "preload")
    assert r.returncode == 0 and "verilator: build" in r.stderr and "scan bits preloaded" in r.stderr, r.stderr
    rep = json.loads((cnn_out / "rtl_sim.json").read_text())
    assert rep["simulator"] == "verilator" and rep["bit_exact"] and rep["images"] == 40
    assert rep["scan"] == "preload" and rep["scan_bits"] > 30000 and rep["cycles_rel_err"] == 0
    assert rep["accuracy_rtl"] == rep["accuracy_model"] > 0.9 and rep["build_seconds"] > 0
    assert rep["build"] == ("one unit" if (os.cpu_count() or 1) <= 2 else f"{min(os.cpu_count(), 8)} job(s)")
    # a design above VERILATOR_ONE_UNIT_BYTES: a g++ a generated file over the jobs, the same codes
    monkeypatch.setattr(rtlsim, "VERILATOR_ONE_UNIT_BYTES", 0)
    phases = []
    rep = rtlsim.rtl_sim(cnn_out, digits / "x.npy", digits / "y.npy", limit=3, simulator="verilator",
                         progress=lambda *a: phases.append(a))
    assert rep["build"].endswith("job(s)") and rep["bit_exact"] and rep["cycles_rel_err"] == 0
    # the CLI's progress bar hears of each phase as it starts
    assert phases == [("numpy model (3 image(s))", 0, 1), ("verilator build", 0, 2),
                      ("verilator run (3 image(s))", 1, 2)], phases
    # auto: a design this small stays in Icarus (no build)
    r = amsc("rtl-sim", cnn_out, "--inputs", digits / "x.npy", "--limit", 2)
    assert r.returncode == 0, r.stderr
    assert json.loads((cnn_out / "rtl_sim.json").read_text())["simulator"] == "icarus"


def test_a_simulator_that_is_not_installed(mlp_out, digits, tmp_path):
    """--simulator naming a simulator that is not on PATH: one line, exit 2, no result file."""
    import os
    import sys

    empty = tmp_path / "bin"
    empty.mkdir()
    for sim, needle in (("verilator", "Verilator is not installed"), ("icarus", "Icarus Verilog is not installed")):
        r = subprocess.run([sys.executable, "-m", "compiler.cli", "rtl-sim", str(mlp_out), "--inputs",
                            str(digits / "x.npy"), "--simulator", sim], capture_output=True, text=True,
                           env={**os.environ, "PATH": str(empty)}, cwd=MLP.parents[1])
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (mlp_out / "rtl_sim.json").exists()
    r = amsc("rtl-sim", mlp_out, "--inputs", digits / "x.npy", "--simulator", "modelsim")
    assert r.returncode == 2 and "--simulator" in r.stderr


def test_a_wrong_weight_bit_is_caught(mlp_out, digits, tmp_path):
    require_tool("iverilog", "vvp")
    out = shutil.copytree(mlp_out, tmp_path / "o")
    scan = out / "rtl" / "sim" / "scan.mem"
    bits = scan.read_text().split()
    m = json.loads((out / "manifest.json").read_text())
    prog = json.loads((out / "rtl" / "program.json").read_text())
    order = m["rtl_datapath"]["scan_order"]
    first = next(t for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"] if t["name"] == order[0])
    # the first register on the chain (the first tile's macro levels) holds the stream's last bits:
    # cell (word line, pair, side), level_bits each, least significant first. Invert the bits of its
    # G+ level of row 27 (the centre pixel), column 0, on the word line and pair the placement chose
    assert (first["row0"], first["col0"]) == (0, 0) and first["row1"] > 27
    lb = prog["level_bits"]
    wl, pair = first.get("wl", range(first["prows"]))[27], first.get("bl", range(first["pcols"]))[0]
    name, size = scan_registers(prog, order)[0]
    assert name == "preload_t0.mem" and size == first["prows"] * first["pcols"] * 2 * lb
    start = len(bits) - size
    for b in range(lb):
        k = start + ((wl * first["pcols"] + pair) * 2 + 0) * lb + b
        bits[k] = "1" if bits[k] == "0" else "0"
    scan.write_text("".join(b + "\n" for b in bits))
    rehash(out, "rtl/sim/scan.mem")
    r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--limit", 20)
    assert r.returncode == 1 and "MISMATCH" in r.stderr, r.stderr
    chain = json.loads((out / "rtl_sim.json").read_text())
    # the preload files are cut from the same stream: the bits land in the same cell, the same outputs differ
    r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--limit", 20, "--scan", "preload")
    assert r.returncode == 1 and "MISMATCH" in r.stderr and "preloaded" in r.stderr, r.stderr
    pre = json.loads((out / "rtl_sim.json").read_text())
    assert (pre["mismatches"], pre["first_mismatch"]) == (chain["mismatches"], chain["first_mismatch"])


def test_the_word_lines_hold_while_a_read_settles(cnn_out, digits, tmp_path):
    """The sample-and-holds free a read's word lines once it has settled, so a tile keeps one DAC
    register a word line: the next position's gather waits SETTLE clocks after a start instead of
    writing into a second, latched copy (HOLD 0 on every tile of a shared-ADC chip). The behavioural
    macro inverts a read whose codes moved while it settled: with the wait taken out of the chip
    top, rtl-sim is no longer bit-exact."""
    from compiler.backend.verilog import SETTLE

    require_tool("iverilog", "vvp")
    out = shutil.copytree(cnn_out, tmp_path / "o")
    top_v = out / "rtl" / "cnn_digits_top.v"
    top = top_v.read_text()
    assert top.count(".HOLD(0)") == 7 and ".HOLD(1)" not in top
    waits = re.findall(r" && settle_(\d+) == \d+'d0\)", top)
    assert len(waits) == 2 and f"settle_{waits[0]} <= 2'd{SETTLE};" in top    # conv1 and conv2 gather while they read
    top_v.write_text(re.sub(r" && settle_\d+ == \d+'d0\)", ")", top))
    rehash(out, "rtl/cnn_digits_top.v")
    r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--limit", 2)
    assert r.returncode == 1 and "MISMATCH" in r.stderr, r.stderr


def test_rtl_sim_bad_inputs(mlp_out, tmp_path):
    np.save(tmp_path / "bad.npy", np.ones((3, 7)))
    r = amsc("rtl-sim", mlp_out, "--inputs", tmp_path / "bad.npy")
    assert r.returncode == 2 and "expected [N, 64]" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_residual_avgpool_global_pool_and_host_softmax_are_bit_exact(tmp_path):
    """A random network with the digital units the digits designs do not use: a residual add,
    average pooling, global average pooling, and a final softmax left to the host."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(3)

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="ca", pads=pads),
        helper.make_node("Relu", ["c1"], ["a"], name="ra"),
        helper.make_node("Conv", ["a", "w2", "b2"], ["c2"], name="cb", pads=pads),
        helper.make_node("Relu", ["c2"], ["b"], name="rb"),
        helper.make_node("Add", ["a", "b"], ["s"], name="res"),
        helper.make_node("AveragePool", ["s"], ["p"], name="ap", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w3", "b3"], ["c3"], name="cc", pads=pads),
        helper.make_node("Relu", ["c3"], ["r3"], name="rc"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["l"], name="fc", transB=1),
        helper.make_node("Softmax", ["l"], ["y"], name="sm", axis=1),
    ]
    inits = [("w1", w(4, 2, 3, 3)), ("b1", rng.normal(size=4) * 0.1), ("w2", w(4, 4, 3, 3)),
             ("b2", rng.normal(size=4) * 0.1), ("w3", w(6, 4, 3, 3)), ("b3", rng.normal(size=6) * 0.1),
             ("w4", w(5, 6)), ("b4", rng.normal(size=5) * 0.1)]
    model = save_model(tmp_path / "res.onnx", nodes, [("x", ["N", 2, 8, 8])], [("y", ["N", 5])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(64, 2, 8, 8)))
    x = rng.uniform(0, 1, size=(30, 2, 8, 8))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    m = _compile_lint_sim(model, tmp_path / "x.npy", out, sram=True)
    assert m["rtl_datapath"]["calibration"] == "calib.npy"
    # the integer program still computes the network: same argmax as the float model on these inputs
    from compiler.backend.qmodel import input_codes, load_program, run_program
    from compiler.frontend import load_model
    from compiler.ir.interp import run_ir

    prog = load_program(out)
    assert [st["kind"] for st in prog["steps"]][-2:] == ["send", "host"]   # the softmax runs after the chip
    q = run_program(prog, input_codes(prog, x))
    ir, _ = load_model(model)
    f = list(run_ir(ir, {ir.nodes_of("input")[0]: x}).values())[0]
    assert np.mean(q.argmax(1) == f.argmax(1)) >= 0.9


@pytest.mark.parametrize("acts", [("Sigmoid", "Clip", "LeakyRelu"), ("Clip", "Sigmoid", "Tanh"),
                                  ("Relu", "Relu", "Sigmoid")])
def test_activation_units_are_bit_exact(acts, tmp_path):
    """Digital activation units after the ADCs: Sigmoid/Tanh tables, Clip and LeakyReLU."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from compiler.backend.qmodel import input_codes, load_program, run_program
    from compiler.frontend import load_model
    from compiler.ir.interp import run_ir
    from helpers import save_model

    rng = np.random.default_rng(len(acts[0]))
    dims = [16, 24, 12, 6]
    nodes, inits, prev = [], [], "x"
    for k, act in enumerate(acts):
        inits += [(f"w{k}", rng.normal(size=(dims[k + 1], dims[k])) * 1.5 / np.sqrt(dims[k])),
                  (f"b{k}", rng.normal(size=dims[k + 1]) * 0.2)]
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [f"z{k}"], name=f"fc{k}", transB=1))
        ins = [f"z{k}"]
        if act == "Clip":
            inits += [(f"lo{k}", np.array(0.0)), (f"hi{k}", np.array(0.6))]
            ins += [f"lo{k}", f"hi{k}"]
        kw = {"alpha": 0.1} if act == "LeakyRelu" else {}
        prev = "y" if k == len(acts) - 1 else f"a{k}"
        nodes.append(helper.make_node(act, ins, [prev], name=f"act{k}", **kw))
    model = save_model(tmp_path / "acts.onnx", nodes, [("x", ["N", 16])], [("y", ["N", 6])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(64, 16)))
    x = rng.uniform(0, 1, size=(40, 16))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    _compile_lint_sim(model, tmp_path / "x.npy", out, "--tile", "16x16")
    # against the network with the same 4-bit weights, the integer datapath only adds ADC/DAC and
    # table rounding: three layers of 8-bit ADCs (full scale set by the worst-case column) and
    # 8-bit DACs stay within a few percent of the output range
    from compiler.options import CompileOptions
    from compiler.passes.pipeline import run_pipeline
    from compiler.pdk import load_pdk

    prog = load_program(out)
    q = run_program(prog, input_codes(prog, x)) * prog["output_scale"]
    ir, _ = load_model(model)
    low = run_pipeline(ir, CompileOptions(tile_rows=16, tile_cols=16), load_pdk("generic"))
    f = list(run_ir(low, {low.nodes_of("input")[0]: x}).values())[0]
    assert np.max(np.abs(q - f)) < 0.06 * max(1.0, np.max(np.abs(f)))


def test_signed_datapath_on_digits(signed_out):
    """Every map of cnn_signed is signed: its layers read bipolar DAC codes (Bd + 1 bits)."""
    m = json.loads((signed_out / "manifest.json").read_text())
    assert m["rtl_datapath"]["generated"] and all(t["bipolar"] for t in m["tiles"])
    prog = json.loads((signed_out / "rtl" / "program.json").read_text())
    assert prog["input"]["signed"] and prog["input"]["bits"] == prog["dac_bits"] + 1
    assert all(st["src"]["signed"] for st in prog["steps"] if st["kind"] not in ("recv", "host"))
    # verification drives the tiles with codes of both signs, at the 1 LSB tolerance
    r = amsc("verify", signed_out, "--jobs", "2", "--vectors", "32")
    assert r.returncode == 0, r.stderr
    v = json.loads((signed_out / "verify.json").read_text())
    assert v["passed"] and len(v["blocks"]) == len(m["tiles"])


def test_negative_activation_on_unipolar_dacs_is_reported(tmp_path):
    """sky130_1t1r drives its word lines with unipolar DACs: a tanh between layers keeps SPICE and
    tiles but not the datapath, and the reason says how to fix it."""
    require_tool("libngspice")
    from onnx import helper

    from helpers import save_model

    nodes = [helper.make_node("Gemm", ["x", "w0"], ["z"], name="fc0", transB=1),
             helper.make_node("Tanh", ["z"], ["a"], name="t"),
             helper.make_node("Gemm", ["a", "w1"], ["y"], name="fc1", transB=1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4])], [("y", ["N", 2])],
                       [("w0", np.ones((3, 4))), ("w1", np.ones((2, 3)))])
    out = tmp_path / "out"
    assert amsc("compile", model, "-o", out, "--pdk", "sky130_1t1r").returncode == 0
    dp = json.loads((out / "manifest.json").read_text())["rtl_datapath"]
    assert not dp["generated"] and "dac.bipolar: false" in dp["reason"] and "generic" in dp["reason"]
    r = amsc("rtl-sim", out, "--inputs", model)
    assert r.returncode == 2 and "dac.bipolar" in r.stderr
    # the generic PDK's DACs are bipolar: the same network gets its datapath
    assert amsc("compile", model, "-o", tmp_path / "g").returncode == 0
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["rtl_datapath"]["generated"]


def test_every_unit_on_signed_codes_is_bit_exact(tmp_path):
    """A centred input, LeakyReLU, max pooling with padding, a residual add, an unfolded
    BatchNormalization, average pooling, a ReLU on signed codes, a concat of a signed and an
    unsigned map, tanh and global pooling, all on signed codes."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(7)

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    pads, mk = [1, 1, 1, 1], helper.make_node
    nodes = [
        mk("Conv", ["x", "w1", "b1"], ["c1"], name="ca", pads=pads),
        mk("LeakyRelu", ["c1"], ["a"], name="lrelu", alpha=0.1),
        mk("MaxPool", ["a"], ["p"], name="mp", kernel_shape=[3, 3], strides=[2, 2], pads=pads),
        mk("Conv", ["p", "w2", "b2"], ["c2"], name="cb", pads=pads),
        mk("Add", ["p", "c2"], ["s"], name="res"),
        mk("BatchNormalization", ["s", "g", "be", "mu", "var"], ["bn"], name="bn"),
        mk("AveragePool", ["bn"], ["ap"], name="ap", kernel_shape=[2, 2], strides=[2, 2]),
        mk("Relu", ["ap"], ["r"], name="relu"),
        mk("Concat", ["r", "ap"], ["cat"], name="cat", axis=1),
        mk("Conv", ["cat", "w3", "b3"], ["c3"], name="cc", pads=pads),
        mk("Tanh", ["c3"], ["t"], name="tanh"),
        mk("GlobalAveragePool", ["t"], ["g2"], name="gap"),
        mk("Flatten", ["g2"], ["f"], name="fl"),
        mk("Gemm", ["f", "w4", "b4"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", w(4, 2, 3, 3)), ("b1", rng.normal(size=4) * 0.1), ("w2", w(4, 4, 3, 3)),
             ("b2", rng.normal(size=4) * 0.1), ("g", rng.uniform(0.5, 1.5, 4)), ("be", rng.normal(size=4) * 0.1),
             ("mu", rng.normal(size=4) * 0.1), ("var", rng.uniform(0.5, 1.5, 4)),
             ("w3", w(6, 8, 3, 3)), ("b3", rng.normal(size=6) * 0.1), ("w4", w(5, 6)), ("b4", rng.normal(size=5) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 8, 8])], [("y", ["N", 5])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(-1, 1, size=(64, 2, 8, 8)))
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, size=(24, 2, 8, 8)))
    m = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--input-range", "-1", "1")
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    kinds = {(st["kind"], st.get("op", st.get("pool")), st["dst"]["signed"]) for st in prog["steps"]
             if st["kind"] not in ("send", "host")}
    assert {("pool", "max", True), ("add", None, True), ("remap", "batchnorm", True), ("pool", "avg", True),
            ("remap", "act", False), ("remap", "concat", True)} <= kinds, kinds
    assert all(t["bipolar"] for t in m["tiles"])


def test_transpose_concat_and_unfolded_batchnorm_are_bit_exact(tmp_path):
    """A channel concat of two convolution branches with different calibrated ranges (stored in
    place: each layer writes its channels of the concatenation's map, at its scale), then the
    table-driven data-movement unit's spatial transpose, and a BatchNormalization with no layer to
    fold into."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(11)
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "g", "be", "mu", "var"], ["xn"], name="bn_in"),
        helper.make_node("Conv", ["xn", "w1", "b1"], ["c1"], name="ca", pads=pads),
        helper.make_node("Relu", ["c1"], ["a"], name="ra"),
        helper.make_node("Conv", ["xn", "w2", "b2"], ["c2"], name="cb", pads=pads),
        helper.make_node("Relu", ["c2"], ["b"], name="rb"),
        helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
        helper.make_node("Transpose", ["cat"], ["t"], name="tr", perm=[0, 1, 3, 2]),
        helper.make_node("Flatten", ["t"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("g", rng.uniform(0.5, 1.5, 2)), ("be", rng.uniform(0.5, 1.0, 2)), ("mu", rng.uniform(0, 0.3, 2)),
             ("var", rng.uniform(0.5, 1.5, 2)), ("w1", rng.normal(size=(3, 2, 3, 3)) * 0.5),
             ("b1", rng.normal(size=3) * 0.1), ("w2", rng.normal(size=(2, 2, 3, 3)) * 0.2),
             ("b2", rng.normal(size=2) * 0.1), ("w3", rng.normal(size=(4, 5 * 6 * 6)) * 0.1),
             ("b3", rng.normal(size=4) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 6, 6])], [("y", ["N", 4])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(64, 2, 6, 6)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 2, 6, 6)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out")
    steps = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())["steps"]
    assert [st["op"] for st in steps if st["kind"] == "remap"] == ["batchnorm", "transpose"]
    assert [(st["name"], st["base"], st["dst"]["shape"]) for st in steps if st["kind"] == "layer" and "base" in st] \
        == [("ca", 0, [5, 6, 6]), ("cb", 3 * 36, [5, 6, 6])]


def test_resolution_overrides_and_column_scaling_reach_every_back_end(mlp_out, digits, tmp_path):
    """--weight-bits/--adc-bits/--dac-bits and --weight-scale column change the levels, the ADC
    LSB and every bus width; ngspice verification and the bit-exact RTL follow."""
    require_tool("iverilog", "vvp", "verilator", "ngspice", "libngspice")
    out = tmp_path / "o"
    m = _compile_lint_sim(MLP / "model.onnx", digits / "x.npy", out, "--weight-bits", "3", "--adc-bits", "6",
                          "--dac-bits", "6", "--weight-scale", "column")
    assert m["pdk"]["adc_bits"] == 6 and m["pdk"]["dac_bits"] == 6 and m["pdk"]["levels"] == 8
    for t in m["tiles"]:
        lv = np.load(out / t["conductances"]["lpos"])
        assert lv.max() == 7 and t["adc_lsb_a"] == pytest.approx(2 * t["adc_full_scale_a"] / 64)
    top = (out / "rtl" / "mlp_digits_top.v").read_text()
    assert "input  wire [5:0]        in_data" in top
    r = amsc("verify", out, "--vectors", "4")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("include_pad", [0, 1])
def test_padded_average_pooling_is_bit_exact(include_pad, tmp_path):
    """Average pooling over padded windows: a constant divisor when the padding counts, a divisor
    per output (a table) when it does not; with 6-bit DACs for good measure."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(7)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("AveragePool", ["r"], ["p"], name="avg", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], count_include_pad=include_pad),
             helper.make_node("Flatten", ["p"], ["f"], name="fl"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], name="fc", transB=1)]
    inits = [("w1", rng.normal(size=(3, 1, 3, 3))), ("b1", rng.normal(size=3) * 0.1),
             ("w2", rng.normal(size=(4, 3 * 4 * 4)) * 0.2), ("b2", rng.normal(size=4) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 1, 8, 8])], [("y", ["N", 4])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(32, 1, 8, 8)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(16, 1, 8, 8)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--dac-bits", "6")


def test_mobilenet_style_network_compiles_verifies_and_is_bit_exact(tmp_path):
    """Depthwise, pointwise and grouped convolutions, ReLU6 as Clip with inputs, Pad merged into the
    stem conv, BN, global pooling and a Gemm: every tile verifies in ngspice at 1 LSB, the chip top
    lints under -Wall, and the RTL is bit-exact against the numpy model."""
    require_tool("iverilog", "vvp", "verilator")
    from helpers import mobilenet_style

    model = mobilenet_style(tmp_path / "mb.onnx")
    rng = np.random.default_rng(2)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(12, 3, 16, 16)))
    out = tmp_path / "out"
    m = _compile_lint_sim(model, tmp_path / "x.npy", out, "--pipeline", "8")
    assert m["rtl_datapath"]["pipeline"] > 3
    layers = {layer["name"]: layer for layer in m["layers"]}
    # the depthwise 3x3 (8 groups of 9 rows x 1 output) packs 7 groups per 64x64 tile: 2 tiles, not 8
    assert len(layers["dw"]["tiles"]) == 2 and len(layers["gconv"]["tiles"]) == 4
    dw_tile = [t for t in m["tiles"] if t["layer"] == "dw"][0]
    assert len(dw_tile["blocks"]) == 7
    assert {n["home"] for n in m["partition"]["nodes"]} == {"crossbar", "digital"}
    r = amsc("verify", out, "--jobs", "2", "--vectors", "8")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    assert rep["passed"] and len(rep["blocks"]) == len(m["tiles"])


def test_resnet_block_add_relu_is_one_unit_and_bit_exact(tmp_path):
    """A ResNet block: a conv-BN branch (signed) plus a projection shortcut (signed), then ReLU. The
    ReLU is the residual add's clamp at 0, so the add reads signed codes and writes unsigned ones."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(3)

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    mk, pads = helper.make_node, [1, 1, 1, 1]
    nodes = [mk("Conv", ["x", "w1"], ["c1"], pads=pads), mk("Relu", ["c1"], ["r1"]),
             mk("Conv", ["r1", "w2"], ["c2"], pads=pads), mk("BatchNormalization", ["c2", "g", "b", "m", "v"], ["bn"]),
             mk("Conv", ["r1", "w3"], ["c3"]), mk("Add", ["bn", "c3"], ["s"]), mk("Relu", ["s"], ["r2"]),
             mk("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             mk("Flatten", ["p"], ["f"]), mk("Gemm", ["f", "w4"], ["y"], transB=1)]
    inits = [("w1", w(4, 2, 3, 3)), ("w2", w(4, 4, 3, 3)), ("g", rng.uniform(.5, 1.5, 4)), ("b", rng.normal(size=4) * .1),
             ("m", rng.normal(size=4) * .1), ("v", rng.uniform(.5, 1.5, 4)), ("w3", w(4, 4, 1, 1)), ("w4", w(5, 64))]
    model = save_model(tmp_path / "res.onnx", nodes, [("x", ["N", 2, 8, 8])], [("y", ["N", 5])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, (64, 2, 8, 8)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, (20, 2, 8, 8)))
    # as a pipeline: the shortcut's map crosses stage boundaries, copied from stage to stage
    m = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--pipeline", "4", sram=True)
    assert m["rtl_datapath"]["pipeline"] > 2
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    (add,) = [st for st in prog["steps"] if st["kind"] == "add"]
    assert add["src"]["signed"] and add["src2"]["signed"] and not add["dst"]["signed"]
    assert not [st for st in prog["steps"] if st["kind"] == "remap"]   # no separate ReLU unit


def test_maps_in_sram_macros_at_every_kind_of_port_are_bit_exact(tmp_path):
    """--map-memory sram: a residual add of two convolutions' maps (its operands read through two
    ports of different macros in one clock), a table after it and the table's map streamed out to
    the host, as a pipeline (banked maps: a macro per part and bank); codes of 9 bits, wider than
    the macro's 8 (two macros a part). Bit-exact, clocks as counted, and yosys keeps every macro a
    black box (the report's synthesis: no memory of flip-flops is left of those maps)."""
    require_tool("iverilog", "vvp", "verilator", "yosys")
    from onnx import helper

    from compiler.eval.ppa import _memories
    from helpers import save_model

    rng = np.random.default_rng(5)
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), mk("Conv", ["x", "w2", "b2"], ["c2"]),
             mk("Add", ["c1", "c2"], ["s"]), mk("Sigmoid", ["s"], ["y"])]
    inits = [("w1", rng.normal(size=(4, 2, 3, 3)) * 0.5), ("b1", rng.normal(size=4) * 0.1),
             ("w2", rng.normal(size=(4, 2, 1, 1)) * 0.5), ("b2", rng.normal(size=4) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 8, 8])], [("y", ["N", 4, 8, 8])], inits, opset=20)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(5, 2, 8, 8)))
    m = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", sram=True)
    assert m["rtl_datapath"]["srams"] == {}     # auto: maps this small stay flip-flops
    out = tmp_path / "out_sram"
    srams = json.loads((out / "manifest.json").read_text())["rtl_datapath"]["srams"]
    assert {x["banks"] for x in srams.values()} >= {1, 2} and {x["width"] for x in srams.values()} == {8, 9}
    top = next((out / "rtl").glob("*_top.v")).read_text()
    for site in ("srv_ea", "srv_eb", "srv_et", "srv_os", "swe_wo", "swe_ws", "swk_ws"):
        assert f"assign {site}" in top, site
    dump, stat = tmp_path / "mem.txt", tmp_path / "stat.json"
    script = (f"read_verilog -sv {' '.join(_files(out))}; synth -top g_top -run begin:fine; "
              f"tee -q -o {dump} dump t:$mem_v2; tee -q -o {stat} stat -json")
    r = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not [x for x in _memories(dump.read_text()) if any(f"mem_{n}_" in x["name"] for n in srams)]
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    assert cells["g_sram"] == sum(x["B"] * x["banks"] for x in srams.values())


def test_element_wise_units_read_and_write_maps_by_coordinates_bit_exactly(tmp_path):
    """Residual adds and a table whose operands and outputs 3x3 convolutions also gather: no address
    function separates such a map's lanes, the units' coordinates do (each add's and the table's 4
    lanes are columns of one 12-column row). Bit-exact with the maps in flip-flops and in SRAM macros."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(8)
    mk, p1 = helper.make_node, [1, 1, 1, 1]

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    nodes = [mk("Conv", ["x", "w1", "b1"], ["c1"], pads=p1), mk("Conv", ["x", "w2", "b2"], ["c2"]),
             mk("Add", ["c1", "c2"], ["s"]), mk("Conv", ["c1", "w5", "b5"], ["t"], pads=p1),
             mk("Sigmoid", ["s"], ["g"]), mk("Conv", ["g", "w3", "b3"], ["u"], pads=p1),
             mk("Conv", ["s", "w6", "b6"], ["v"], pads=p1), mk("Add", ["u", "v"], ["h0"]), mk("Add", ["h0", "t"], ["h"]),
             mk("MaxPool", ["h"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             mk("Flatten", ["p"], ["f"]), mk("Gemm", ["f", "w4", "b4"], ["y"], transB=1)]
    inits = [("w1", w(4, 2, 3, 3)), ("b1", rng.normal(size=4) * 0.1), ("w2", w(4, 2, 1, 1)), ("b2", rng.normal(size=4) * 0.1),
             ("w3", w(4, 4, 3, 3)), ("b3", rng.normal(size=4) * 0.1), ("w5", w(4, 4, 3, 3)), ("b5", rng.normal(size=4) * 0.1),
             ("w6", w(4, 4, 3, 3)), ("b6", rng.normal(size=4) * 0.1),
             ("w4", w(5, 4 * 6 * 6)), ("b4", rng.normal(size=5) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 12, 12])], [("y", ["N", 5])], inits, opset=20)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(3, 2, 12, 12)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--lanes", "4", sram=True)
    for out in (tmp_path / "out", tmp_path / "out_sram"):
        top = next((out / "rtl").glob("*_top.v")).read_text()
        # the adds' operands (ea, eb), the table's (et) and the units' outputs (wo) by coordinates
        assert {"ea", "eb", "et", "wo"} <= set(re.findall(r"wire \[\d+:0\] (ea|eb|et|wo)\d+_pw0 = ilvc_", top))


def test_a_map_a_global_pooling_views_in_another_shape_is_bit_exact(tmp_path):
    """ShuffleNet V2's ReduceMean over (H, W) pools its [C, H, W] map as [C, H W, 1]: no coordinates
    of one shape address it for both units, so it is not interleaved by them (it was, and lanes 1..3
    of the pooling read wrong words: ShuffleNet's torch.onnx export, 9 of its 10 outputs wrong)."""
    require_tool("iverilog", "vvp")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(3)
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1", "b1"], ["c1"]), mk("Relu", ["c1"], ["r1"]),
             mk("ReduceMean", ["r1"], ["y"], keepdims=0, axes=[2, 3])]
    inits = [("w1", rng.normal(size=(16, 4, 1, 1)) * 0.5), ("b1", rng.normal(size=16) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 4, 2, 2])], [("y", ["N", 16])], inits, opset=13)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(4, 4, 2, 2)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--lanes", "4")
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    (pool,) = [st for st in prog["steps"] if st["kind"] == "pool"]
    assert pool["src"]["shape"] == [16, 4, 1] and pool["src"]["name"] == prog["steps"][1]["dst"]["name"]
    assert prog["steps"][1]["dst"]["shape"] == [16, 2, 2]


def test_large_design_skips_rtl_sim_files_but_keeps_the_rtl(mlp_out, tmp_path, monkeypatch, capsys):
    """Above SIM_MAX_SCAN_BITS the testbench, scan.mem and behavioural model are not written (one
    Icarus register bit per cell level would not fit); the synthesizable RTL is, and lints."""
    require_tool("verilator")
    from compiler import cli
    from compiler.backend import verilog

    monkeypatch.setattr(verilog, "SIM_MAX_SCAN_BITS", 1000)
    out = tmp_path / "o"
    assert cli.main(["compile", str(MLP / "model.onnx"), "-o", str(out)]) == 0
    dp = json.loads((out / "manifest.json").read_text())["rtl_datapath"]
    assert dp["generated"] and not dp["rtl_sim"]["generated"] and "scan-chain bits" in dp["rtl_sim"]["reason"]
    assert not (out / "rtl" / "sim").exists()
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "mlp_digits_top", *_files(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    capsys.readouterr()
    assert cli.main(["rtl-sim", str(out), "--inputs", str(MLP / "calib.npy")]) == 2
    assert "no RTL simulation files" in capsys.readouterr().err


def test_maps_of_more_than_65536_elements_are_bit_exact(tmp_path):
    """Counters and addresses grow past 16 bits with the design: a 1x272x272 input (73,984 codes)."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(9)
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1"], ["c"], strides=[4, 4]), mk("Relu", ["c"], ["r"]),
             mk("GlobalAveragePool", ["r"], ["g"]), mk("Flatten", ["g"], ["f"]),
             mk("Gemm", ["f", "w2"], ["y"], transB=1)]
    model = save_model(tmp_path / "big.onnx", nodes, [("x", ["N", 1, 272, 272])], [("y", ["N", 3])],
                       [("w1", rng.normal(size=(2, 1, 4, 4))), ("w2", rng.normal(size=(3, 2)))])
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, (8, 1, 272, 272)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, (2, 1, 272, 272)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out")
    (top,) = (tmp_path / "out" / "rtl").glob("*_top.v")
    assert "reg [17:0] idx;" in top.read_text()


def test_data_movement_units_beyond_table_size_are_bit_exact(tmp_path):
    """Inception's and DenseNet's big Concats, ShuffleNet's channel shuffle and an unfolded
    BatchNormalization over a map larger than a per-element table (REMAP_MAX): the data-movement
    unit counts over the output and computes each address, so its size is not bounded by ROMs."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import TensorProto, helper

    from compiler.backend.qmodel import REMAP_MAX, REMAP_RANK
    from helpers import save_model

    rng = np.random.default_rng(11)

    def w(*s):
        return rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))

    mk = helper.make_node
    shape = helper.make_tensor("s1", TensorProto.INT64, [5], [1, 2, 4, 48, 48])
    flat = helper.make_tensor("s2", TensorProto.INT64, [4], [1, 8, 48, 48])
    nodes = [
        mk("Conv", ["x", "w1", "b1"], ["c1"], name="ca", pads=[1, 1, 1, 1]), mk("Relu", ["c1"], ["a1"], name="ra"),
        # DenseNet's way: the block's input joined to the new features (a copy: the input is no layer's)
        mk("Concat", ["a1", "x"], ["cat"], name="cat", axis=1),
        mk("Constant", [], ["sh1"], value=shape), mk("Reshape", ["cat", "sh1"], ["g"], name="groups"),
        mk("Transpose", ["g"], ["gt"], name="shuffle", perm=[0, 2, 1, 3, 4]),
        mk("Constant", [], ["sh2"], value=flat), mk("Reshape", ["gt", "sh2"], ["sf"], name="ungroup"),
        mk("BatchNormalization", ["sf", "g_", "be", "mu", "var"], ["bn"], name="bn"),
        mk("MaxPool", ["bn"], ["p"], name="mp", kernel_shape=[4, 4], strides=[4, 4]),
        mk("Flatten", ["p"], ["f"], name="fl"),
        mk("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", w(6, 2, 3, 3)), ("b1", rng.normal(size=6) * 0.1),
             ("g_", rng.uniform(0.5, 1.5, 8)), ("be", rng.normal(size=8) * 0.1),
             ("mu", rng.normal(size=8) * 0.1), ("var", rng.uniform(0.5, 1.5, 8)),
             ("w3", w(10, 8 * 12 * 12)), ("b3", rng.normal(size=10) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 48, 48])], [("y", ["N", 10])], inits)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(16, 2, 48, 48)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(2, 2, 48, 48)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out")
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    big = {st["op"]: st for st in prog["steps"] if st["kind"] == "remap"}
    assert set(big) == {"concat", "transpose", "batchnorm"}
    assert all(int(np.prod(st["dims"])) > REMAP_MAX for st in big.values())
    # one scale per channel: the channel axis of the (C, H, W) output, padded in front to REMAP_RANK axes
    assert big["batchnorm"]["ab_axis"] == REMAP_RANK - 3 and len(big["batchnorm"]["a"][0]) == 8
    # the shuffle reads the (2, 4, 48, 48) groups with their strides permuted
    assert big["transpose"]["strides"][0][-4:] == [48 * 48, 4 * 48 * 48, 48, 1]


def test_slice_and_split_on_the_data_movement_unit_are_bit_exact(tmp_path):
    """ShuffleNet's channel halves (Slice), a Split into three parts and a strided spatial Slice:
    each a data-movement unit that reads from a base address with strides, bit-exact in rtl-sim."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper, numpy_helper

    from helpers import save_model

    rng = np.random.default_rng(12)

    def ints(name, v):
        return numpy_helper.from_array(np.asarray(v, np.int64), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
        helper.make_node("Slice", ["r1", "s0", "e0", "a0"], ["half"], name="half"),            # channels 3..5
        helper.make_node("Slice", ["r1", "s1", "e1", "a1", "st1"], ["sub"], name="sub"),       # every 2nd row, col
        helper.make_node("Split", ["half", "sp"], ["p0", "p1", "p2"], name="split", axis=2),  # rows 2 + 2 + 2
        helper.make_node("Concat", ["p2", "p0"], ["cat"], name="cat", axis=2),
        helper.make_node("Flatten", ["cat"], ["f1"], name="fl1"),
        helper.make_node("Flatten", ["sub"], ["f2"], name="fl2"),
        helper.make_node("Concat", ["f1", "f2"], ["f"], name="catf", axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", rng.normal(size=(6, 2, 3, 3)) * 0.4), ("b1", rng.normal(size=6) * 0.1),
             ("w3", rng.normal(size=(4, 3 * 4 * 6 + 6 * 3 * 2)) * 0.1), ("b3", rng.normal(size=4) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 6, 6])], [("y", ["N", 4])], inits)
    import onnx

    m = onnx.load(model)
    m.graph.initializer.extend([ints("s0", [3]), ints("e0", [2 ** 63 - 1]), ints("a0", [1]),
                                ints("s1", [0, 1]), ints("e1", [6, -1]), ints("a1", [2, 3]), ints("st1", [2, 2]),
                                ints("sp", [2, 2, 2])])
    onnx.save(m, model)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(64, 2, 6, 6)))
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 2, 6, 6)))
    manifest = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out")
    assert not [n for n in manifest["partition"]["nodes"] if n["home"] == "host"]
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    bases = [st["base"] for st in prog["steps"] if st["kind"] == "remap" and st["op"] == "slice"]
    assert len(bases) == 5 and all(b[0] > 0 for b in bases if b != [0]), bases


@pytest.mark.parametrize("signed", [False, True])
def test_squeeze_excite_and_gate_products_are_bit_exact(signed, tmp_path):
    """The product unit: MobileNetV3's squeeze-excite (a [C, 1, 1] gate from global pooling, two 1x1
    convolutions and a HardSigmoid, times the map) and a gate of the map's own shape (x * sigmoid),
    on unsigned and signed (no ReLU before them) codes."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(13)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", pads=[1, 1, 1, 1]),
        *([] if signed else [helper.make_node("Relu", ["c1"], ["c1r"], name="r1")]),
        helper.make_node("GlobalAveragePool", ["c1" if signed else "c1r"], ["gp"], name="gap"),
        helper.make_node("Conv", ["gp", "wa", "ba"], ["sa"], name="se_a"),
        helper.make_node("Relu", ["sa"], ["sr"], name="se_r"),
        helper.make_node("Conv", ["sr", "wb", "bb"], ["sb"], name="se_b"),
        helper.make_node("HardSigmoid", ["sb"], ["gate"], name="se_gate", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["gate", "c1" if signed else "c1r"], ["se"], name="se_mul"),   # gate first
        helper.make_node("Conv", ["se", "w2", "b2"], ["c2"], name="glu_lin"),
        helper.make_node("Sigmoid", ["c2"], ["g2"], name="glu_sig"),
        helper.make_node("Mul", ["se", "g2"], ["glu"], name="glu_mul"),
        helper.make_node("Flatten", ["glu"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", rng.normal(size=(4, 2, 3, 3)) * 0.5), ("b1", rng.normal(size=4) * 0.1),
             ("wa", rng.normal(size=(2, 4, 1, 1))), ("ba", rng.normal(size=2) * 0.1),
             ("wb", rng.normal(size=(4, 2, 1, 1))), ("bb", rng.normal(size=4) * 0.1),
             ("w2", rng.normal(size=(4, 4, 1, 1)) * 0.5), ("b2", rng.normal(size=4) * 0.1),
             ("w3", rng.normal(size=(3, 4 * 5 * 5)) * 0.1), ("b3", rng.normal(size=3) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 5, 5])], [("y", ["N", 3])], inits)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 2, 5, 5)))
    manifest = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", sram=True)
    assert not [n for n in manifest["partition"]["nodes"] if n["home"] == "host"]
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    muls = [(st["div"], st["mod"], st["src"]["signed"]) for st in prog["steps"] if st["kind"] == "mul"]
    assert muls == [(25, 4, signed), (1, 100, signed)], muls


def test_standalone_activations_read_a_table_and_are_bit_exact(tmp_path):
    """Activations that no layer absorbs (after a residual add, after a concat): Sigmoid, Tanh,
    LeakyRelu, HardSwish, Clip and GELU each read a table over every code of their source map."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(14)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="ca", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2", "b2"], ["c2"], name="cb", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c1", "c2"], ["s"], name="res"),
        helper.make_node("Sigmoid", ["s"], ["a1"], name="sig"),
        helper.make_node("Tanh", ["s"], ["a2"], name="tanh"),
        helper.make_node("LeakyRelu", ["s"], ["a3"], name="leaky", alpha=0.1),
        helper.make_node("Concat", ["a1", "a2", "a3"], ["cat"], name="cat", axis=1),
        helper.make_node("HardSwish", ["cat"], ["h"], name="hswish"),
        helper.make_node("Clip", ["h", "lo", "hi"], ["cl"], name="clip"),
        helper.make_node("Gelu", ["s"], ["g"], name="gelu"),
        helper.make_node("Concat", ["cl", "g"], ["cat2"], name="cat2", axis=1),
        helper.make_node("Flatten", ["cat2"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", rng.normal(size=(2, 2, 3, 3)) * 0.6), ("b1", rng.normal(size=2) * 0.1),
             ("w2", rng.normal(size=(2, 2, 3, 3)) * 0.6), ("b2", rng.normal(size=2) * 0.1),
             ("lo", np.array(-0.2)), ("hi", np.array(0.6)),
             ("w3", rng.normal(size=(3, 8 * 4 * 4)) * 0.1), ("b3", rng.normal(size=3) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 2, 4, 4])], [("y", ["N", 3])], inits, opset=20)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 2, 4, 4)))
    _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", sram=True)
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    assert sorted(st["act"] for st in prog["steps"] if st["kind"] == "lut") == \
        ["clip", "gelu", "hardswish", "leaky_relu", "sigmoid", "tanh"]


def test_conv_transpose_resize_and_depth_to_space_are_bit_exact(tmp_path):
    """A U-Net-style decoder: a strided ConvTranspose with pads (a crossbar convolution of its stride
    phases, a 5-axis depth-to-space and crop slices on the data-movement unit), a nearest Resize
    (an expand), a bilinear Resize (one crossbar matrix per axis) and a DepthToSpace."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(15)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="enc", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
        helper.make_node("ConvTranspose", ["r1", "wt", "bt"], ["up"], name="up", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], output_padding=[1, 1]),
        helper.make_node("Relu", ["up"], ["r2"], name="r2"),
        helper.make_node("Resize", ["r1", "", "s2"], ["nn"], name="nearest", mode="nearest"),
        helper.make_node("Resize", ["r1", "", "s2"], ["bl"], name="bilinear", mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Conv", ["r1", "w4", "b4"], ["c4"], name="sub"),
        helper.make_node("DepthToSpace", ["c4"], ["d2s"], name="d2s", blocksize=2, mode="CRD"),
        helper.make_node("Concat", ["r2", "nn", "bl", "d2s"], ["cat"], name="cat", axis=1),
        helper.make_node("Flatten", ["cat"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    inits = [("w1", rng.normal(size=(3, 1, 3, 3)) * 0.6), ("b1", rng.normal(size=3) * 0.1),
             ("wt", rng.normal(size=(3, 2, 3, 3)) * 0.5), ("bt", rng.normal(size=2) * 0.1),
             ("s2", [1, 1, 2, 2]), ("w4", rng.normal(size=(4, 3, 1, 1)) * 0.5), ("b4", rng.normal(size=4) * 0.1),
             ("w3", rng.normal(size=(3, 9 * 6 * 6)) * 0.1), ("b3", rng.normal(size=3) * 0.1)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", ["N", 1, 6, 6])], [("y", ["N", 3])], inits, opset=17)
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 1, 6, 6)))
    manifest = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", sram=True)
    assert not [n for n in manifest["partition"]["nodes"] if n["home"] == "host"]
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    ops = sorted({st["op"] for st in prog["steps"] if st["kind"] == "remap"})
    assert ops == ["act", "concat", "expand", "slice", "transpose"], ops   # act: the ReLU after the crop


def test_class_token_concat_and_position_embedding_are_bit_exact(tmp_path):
    """A ViT's token assembly at batch 1: a constant class token concatenated before the patch
    tokens (a constant part of the data-movement unit: gain 0, the token as its offset), a position
    embedding added, a per-token projection; and a constant block of two rows after them."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import compare_with_ort, save_model

    rng = np.random.default_rng(16)
    nodes = [
        helper.make_node("MatMul", ["x", "we"], ["emb"], name="embed"),
        helper.make_node("Concat", ["cls", "emb", "tail"], ["tok"], name="cat", axis=1),
        helper.make_node("Add", ["tok", "pos"], ["tp"], name="pos_add"),
        helper.make_node("MatMul", ["tp", "w2"], ["h"], name="proj"),
        helper.make_node("Relu", ["h"], ["hr"], name="relu"),
        helper.make_node("Flatten", ["hr"], ["f"], name="fl"),
        helper.make_node("Gemm", ["f", "w3"], ["y"], name="head", transB=1),
    ]
    inits = [("we", rng.normal(size=(6, 8)) * 0.5), ("cls", rng.normal(size=(1, 1, 8))),
             ("tail", rng.normal(size=(1, 2, 8)) * 0.5), ("pos", rng.normal(size=(1, 7, 8)) * 0.1),
             ("w2", rng.normal(size=(8, 8)) * 0.4), ("w3", rng.normal(size=(3, 7 * 8)) * 0.2)]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", [1, 4, 6])], [("y", [1, 3])], inits)
    x = rng.uniform(0, 1, size=(1, 4, 6))
    compare_with_ort(model, {"x": x})
    np.save(tmp_path / "x.npy", rng.uniform(0, 1, size=(20, 4, 6)))
    manifest = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--input-range", "0", "1")
    assert not [n for n in manifest["partition"]["nodes"] if n["home"] == "host"]
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    (cat,) = [st for st in prog["steps"] if st["kind"] == "remap" and st["op"] == "concat"]
    assert len(cat["srcs"]) == 3 and cat["srcs"][0]["name"] == cat["srcs"][1]["name"]


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_recurrent_layers_with_initial_states_are_bit_exact(op, tmp_path):
    """A reverse-direction recurrent layer from a constant, nonzero initial state (h0, and c0 for the
    LSTM), sequence first, and a forward one stacked on it: the crossbars read [x_t, h_(t-1)] once
    per step, the cell unit updates the state, the FSM loops over the steps. Bit-exact in rtl-sim,
    and close to onnxruntime through the integer program (``amsc run``, 8-bit weights)."""
    require_tool("iverilog", "vvp", "verilator")
    from onnx import helper

    from helpers import save_model

    rng = np.random.default_rng(17)
    T, I, H = 5, 6, 7
    G = 4 if op == "LSTM" else 3
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    inits = [("W1", rng.normal(size=(1, G * H, I)) * 0.5), ("R1", rng.normal(size=(1, G * H, H)) * 0.5),
             ("B1", rng.normal(size=(1, 2 * G * H)) * 0.3), ("h0", rng.uniform(-0.8, 0.8, size=(1, 1, H))),
             ("W2", rng.normal(size=(1, G * H, H)) * 0.5), ("R2", rng.normal(size=(1, G * H, H)) * 0.5),
             ("head", rng.normal(size=(H, 4)))]
    ins1 = ["x", "W1", "R1", "B1", "", "h0"]
    if op == "LSTM":
        inits.append(("c0", rng.uniform(-2, 2, size=(1, 1, H))))
        ins1.append("c0")
    nodes = [helper.make_node(op, ins1, ["y1"], name="r1", hidden_size=H, direction="reverse", **extra),
             helper.make_node("Squeeze", ["y1", "ax1"], ["s1"], name="sq1"),
             helper.make_node(op, ["s1", "W2", "R2"], ["", "yh"], name="r2", hidden_size=H, **extra),
             helper.make_node("Squeeze", ["yh", "ax0"], ["h"], name="sq2"),
             helper.make_node("MatMul", ["h", "head"], ["y"], name="head")]
    model = save_model(tmp_path / "m.onnx", nodes, [("x", [T, 1, I])], [("y", [1, 4])],
                       inits + [("ax1", np.array([1])), ("ax0", np.array([0]))], opset=14)
    # the axes are int64 constants
    import onnx

    m = onnx.load(model)
    for t in m.graph.initializer:
        if t.name in ("ax0", "ax1"):
            t.CopyFrom(onnx.numpy_helper.from_array(np.array([0 if t.name == "ax0" else 1], np.int64), t.name))
    onnx.save(m, model)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, size=(6, T, I)))
    # the GRU's chip as a pipeline: each recurrent layer's sequencer loops over its steps in its stage
    manifest = _compile_lint_sim(model, tmp_path / "x.npy", tmp_path / "out", "--input-range", "-1", "1",
                                 "--weight-bits", "8", *(("--pipeline", "3") if op == "GRU" else ()))
    assert not [n for n in manifest["partition"]["nodes"] if n["home"] == "host"]
    prog = json.loads((tmp_path / "out" / "rtl" / "program.json").read_text())
    recs = [st["recur"] for st in prog["steps"] if st["kind"] == "layer" and st.get("recur")]
    assert [r["reverse"] for r in recs] == [True, False] and any(recs[0]["h0"])
    r = amsc("run", tmp_path / "out", "--inputs", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    assert float(r.stderr.split("SNR ")[1].split(" dB")[0]) >= 20.0, r.stderr
