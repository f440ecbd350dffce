"""Variability tamed, on the sky130_1t1r device model (its cited stuck-at rates and programming
sigma): chips tested and placed around their stuck cells keep the network's accuracy; one chip's
test results program a chip-specific design that verifies in ngspice, runs bit-exact in the RTL
and keeps its accuracy; spares are paid for in the report; and bad chip states, rates and spare
counts are refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error

CNN = MLP.parent / "cnn_digits"


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    d = tmp_path_factory.mktemp("var")
    for name, model in (("mlp", MLP / "model.onnx"), ("cnn", CNN / "model.onnx")):
        r = amsc("compile", model, "-o", d / name, "--pdk", "sky130_1t1r")
        assert r.returncode == 0, r.stderr
    return d


def _mc(out, digits, *extra):
    r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--mc", "10", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "eval.json").read_text()), r


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_tested_and_placed_chips_keep_the_accuracy_of_float(sky, digits, name):
    """10 Monte-Carlo chips, 450 held-out digits, the PDK's own rates: write-verified chips within 1
    point of float, one-shot chips within 3; where the compiler put the weights they lose 10+."""
    rep, r = _mc(sky / name, digits)
    f = rep["float"]["accuracy"]
    mc = rep["mc"]
    assert mc["modes"]["write_verify"]["mean"] >= f - 0.01, mc["modes"]
    assert mc["modes"]["one_shot"]["mean"] >= f - 0.03, mc["modes"]
    abl = mc["remedies"]["ablation"]
    assert abl["write_verify"]["none"]["mean"] < f - 0.05          # the problem is real
    assert mc["remedies"]["applied"] == ["none", "mapping", "calibration"] and set(abl["one_shot"]) == {"none", "mapping", "calibration"}
    # calibration of each column's gain and offset helps one-shot chips most: their SNR rises
    assert abl["one_shot"]["calibration"]["snr_db"] > abl["one_shot"]["mapping"]["snr_db"] + 1.0
    assert mc["modes"]["one_shot"]["mean"] == abl["one_shot"]["calibration"]["mean"]
    assert mc["remedies"]["placement_weights"].startswith("calibration inputs")
    # the fault-rate curve: 0 to 20 % stuck cells, placement holds where the compiled placement falls
    curve = mc["fault_curve"]
    assert [p["rate"] for p in curve] == [0.0, 0.025, 0.05, 0.1, 0.15, 0.2]
    assert curve[-1]["mapping"]["mean"] > curve[-1]["none"]["mean"] + 0.1
    assert curve[0]["mapping"]["mean"] == pytest.approx(curve[0]["none"]["mean"], abs=0.02)
    assert (sky / name / "eval-report" / "faults.png").is_file()
    assert "Remedies, added in turn" in (sky / name / "eval.html").read_text()
    assert "none" in r.stderr and "mapping" in r.stderr


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_doubled_stuck_at_rates(sky, digits, name):
    """--stuck-rates 3.5 % and 18 % (twice the cited rates): write-verified chips within 3 points."""
    rep, _ = _mc(sky / name, digits, "--stuck-rates", "0.035", "0.18")
    assert rep["mc"]["device"]["stuck_hrs_rate"] == 0.035 and rep["mc"]["device"]["stuck_lrs_rate"] == 0.18
    assert rep["mc"]["modes"]["write_verify"]["mean"] >= rep["float"]["accuracy"] - 0.03, rep["mc"]["modes"]


def test_one_chip_programmed_verified_and_run(sky, digits, tmp_path):
    """chip-state draws one chip (the same bytes from the same seed); program writes its design,
    which ngspice signs off against its own golden model, the RTL runs bit-exactly with the chip's
    levels in its scan chain, and the chip keeps its accuracy within 1 point of float."""
    require_tool("libngspice", "iverilog")
    out = sky / "mlp"
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for p in (a, b):
        r = amsc("chip-state", out, "--seed", "7", "-o", p)
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes() and "stuck at LRS" in r.stderr
    chip = tmp_path / "chip"
    r = amsc("program", out, "--chip-state", a, "-o", chip)
    assert r.returncode == 0, r.stderr
    m = json.loads((chip / "manifest.json").read_text())
    assert m["chip"]["file"] == "chip/state.npz" and m["chip"]["origin"]["drawn"]["seed"] == 7
    assert (chip / "chip" / "state.npz").read_bytes() == a.read_bytes()
    assert m["chip"]["weight_error"] < m["chip"]["weight_error_before"]
    # each tile: its placement, its stuck cells at the conductance the test measured
    from compiler.design.chipstate import load_state
    from compiler.eval.run import Design

    state = load_state(a, m)
    d = Design(chip)
    for t in m["tiles"]:
        p = d.ir.g.nodes[t["name"]]["params"]
        rows, cols = t["placement"]["rows"], t["placement"]["cols"]
        assert len(set(rows)) == len(rows) == t["rows"][1] - t["rows"][0]
        # each row and column within its bank: the 4-lane tile wrapper writes word line w from
        # gather lane w mod 4 only, and column j selects among the pairs j mod 4 (rtl-sim below
        # runs these placements bit-exactly)
        assert all((w - i) % 4 == 0 for i, w in enumerate(rows)), rows
        assert all((q - j) % 4 == 0 for j, q in enumerate(cols)), cols
        ix = np.ix_(rows, cols)
        assert np.array_equal(p["stuck"][0], state.stuck[t["name"]][0][ix])
        for k, g in ((0, "gpos"), (1, "gneg")):
            s = p["stuck"][k] != 0
            assert np.array_equal(p[g][s], state.g[t["name"]][k][ix][s])
    r = amsc("verify", chip)
    assert r.returncode == 0, r.stderr
    assert json.loads((chip / "verify.json").read_text())["passed"]
    r = amsc("evaluate", chip, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--mc", "4")
    assert r.returncode == 0, r.stderr
    rep = json.loads((chip / "eval.json").read_text())
    assert rep["ideal"]["accuracy"] >= rep["float"]["accuracy"] - 0.01
    assert rep["mc"]["remedies"]["applied"] == ["chip", "calibration"] and rep["mc"]["fault_curve"] == []
    # its columns calibrated on its programmed conductances, in the requantizer (and so in the RTL)
    assert m["chip"]["calibration"]["layers"] == 2 and 0.9 < m["chip"]["calibration"]["gain_min"] <= 1.1
    assert all({"cal_gain", "cal_offset"} <= set(layer["arrays"]) for layer in m["layers"])
    assert rep["mc"]["modes"]["write_verify"]["mean"] >= rep["float"]["accuracy"] - 0.01
    r = amsc("rtl-sim", chip, "--inputs", digits / "x.npy", "--limit", "3")
    assert r.returncode == 0, r.stderr
    assert "bit-exact" in r.stderr
    # one silicon for every chip: the chip's RTL and testbench are the design's, byte for byte; its
    # levels and its calibrated requantizer constants are what the scan chain loads
    for f in ("rtl/mlp_digits_top.v", "rtl/mlp_digits_tile.v", "rtl/sim/tb.v"):
        assert (chip / f).read_bytes() == (out / f).read_bytes(), f
    from compiler.backend.qmodel import load_program
    from compiler.backend.verilog import requant_regs, scan_bits

    prog = load_program(chip)
    regs = m["rtl_datapath"]["requant_scan"]
    assert regs == requant_regs(prog) == json.loads((out / "manifest.json").read_text())["rtl_datapath"]["requant_scan"]
    assert [r["layer"] for r in regs] == [s["name"] for s in prog["steps"] if s["kind"] == "layer"]
    bits = np.array((chip / "rtl" / "sim" / "scan.mem").read_text().split(), dtype=np.uint8)
    # every tile: its whole physical array's levels and its routing register (a word line per input
    # row, a pair per column)
    phys = [(t["tile_size"][0], t["tile_size"][1] // 2, t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0])
            for t in m["tiles"]]
    assert bits.size == sum(r["bits"] for r in regs) + sum(
        pr * pc * 2 * prog["level_bits"] + r * int(np.ceil(np.log2(pr))) + c * int(np.ceil(np.log2(max(2, pc))))
        for pr, pc, r, c in phys)
    # the last layer's register comes first on the stream: column 0's MQ, least significant bit first
    last = next(s for s in prog["steps"] if s["kind"] == "layer" and s["name"] == regs[-1]["layer"])
    w = regs[-1]["mq_bits"]
    assert int((bits[:w].astype(np.int64) << np.arange(w)).sum()) == int(last["mq"][0]) % (1 << w)
    assert np.array_equal(np.concatenate(list(scan_bits(prog, m["rtl_datapath"]["scan_order"]))), bits)
    base = np.array((out / "rtl" / "sim" / "scan.mem").read_text().split(), dtype=np.uint8)
    assert base.size == bits.size and not np.array_equal(base[:sum(r["bits"] for r in regs)],
                                                         bits[:sum(r["bits"] for r in regs)])
    # the placement is in the silicon: each tile's routing register carries it. A moved tile's
    # register set back to the identity, the same levels no longer compute the chip's network
    import hashlib
    import shutil

    from compiler.backend.verilog import route_widths, scan_registers

    order = m["rtl_datapath"]["scan_order"]
    by_name = {t["name"]: t for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]}
    k = next(i for i, n in enumerate(order) if by_name[n]["bl"] != list(range(len(by_name[n]["bl"]))))
    t = by_name[order[k]]
    rows = t["row1"] - t["row0"]
    rb, cb = route_widths(t["prows"], t["pcols"])
    ident = np.concatenate([((np.arange(rows)[:, None] >> np.arange(rb)) & 1).reshape(-1),
                            ((np.arange(len(t["bl"]))[:, None] >> np.arange(cb)) & 1).reshape(-1)])
    chain = scan_registers(prog, order)
    assert chain[2 * k + 1] == (f"preload_r{k}.mem", ident.size)
    start = bits.size - sum(n for _, n in chain[:2 * k + 2])    # the chain's first register is the stream's end
    assert not np.array_equal(bits[start:start + ident.size], ident)
    bad = tmp_path / "unrouted"
    shutil.copytree(chip, bad)
    moved = bits.copy()
    moved[start:start + ident.size] = ident
    scan = bad / "rtl" / "sim" / "scan.mem"
    scan.write_text("".join(f"{v}\n" for v in moved))
    mb = json.loads((bad / "manifest.json").read_text())
    for f in mb["files"]:
        if f["path"] == "rtl/sim/scan.mem":
            f["sha256"] = hashlib.sha256(scan.read_bytes()).hexdigest()
    (bad / "manifest.json").write_text(json.dumps(mb))
    r = amsc("rtl-sim", bad, "--inputs", digits / "x.npy", "--limit", "20")
    assert r.returncode == 1 and "MISMATCH" in r.stderr, r.stderr
    # the same chip state programs the same design
    r = amsc("program", out, "--chip-state", b, "-o", tmp_path / "chip2")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "chip2" / "manifest.json").read_text() .replace(str(b), str(a)) == \
        (chip / "manifest.json").read_text()


def test_chip_with_a_wire_mesh_verifies_at_one_lsb(tmp_path, digits):
    """--parasitics --compensate-ir on sky130_1t1r: a chip state programs into a design whose
    netlists put every cell where the chip's placement put it on the wire mesh, compensated around
    the stuck cells it cannot re-program; ngspice signs each tile off at 1 LSB against the chip's
    golden model, and the chip keeps its accuracy within 1 point of float."""
    require_tool("libngspice")
    out, chip, st = tmp_path / "d", tmp_path / "chip", tmp_path / "chip.npz"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", "sky130_1t1r", "--parasitics", "--compensate-ir")
    assert r.returncode == 0, r.stderr
    assert amsc("chip-state", out, "--seed", "7", "-o", st).returncode == 0
    r = amsc("program", out, "--chip-state", st, "-o", chip)
    assert r.returncode == 0, r.stderr
    m = json.loads((chip / "manifest.json").read_text())
    assert m["options"]["parasitics"] and any(t["placement"]["cols"] != sorted(t["placement"]["cols"])
                                              for t in m["tiles"])
    r = amsc("verify", chip, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    blocks = [b for b in json.loads((chip / "verify.json").read_text())["blocks"] if "lsb" in b]
    assert len(blocks) == 2 and all(b["max_abs_err"] < b["lsb"] for b in blocks), blocks
    r = amsc("evaluate", chip, "--inputs", digits / "x.npy", "--labels", digits / "y.npy")
    assert r.returncode == 0, r.stderr
    rep = json.loads((chip / "eval.json").read_text())
    assert rep["ideal"]["accuracy"] >= rep["float"]["accuracy"] - 0.01, rep


def test_recurrent_layers_are_calibrated_per_side(tmp_path, monkeypatch):
    """A PyTorch-exported LSTM classifier on a chip with many stuck cells and one-shot programming
    error (generic PDK: bipolar DACs for the signed hidden state; --stuck-rates 10 % / 40 %, sigma
    0.1): its recurrent layer is calibrated like every other layer, the input side and the recurrent
    side apart (MQX/BQ and MQH/BQH on the scan chain), which raises the chip's SNR against float over
    the same chip with the recurrent layer left uncalibrated; the chip's RTL is the design's, byte
    for byte, and runs bit-exact with the calibrated constants in its scan chain."""
    require_tool("iverilog")
    from compiler.backend.verilog import requant_regs
    from compiler.driver import program_design

    model = MLP.parents[1] / "tests" / "data" / "exported" / "lstm_classifier.onnx"
    rng = np.random.default_rng(0)
    cal, x = tmp_path / "cal.npy", tmp_path / "x.npy"
    np.save(cal, rng.uniform(0, 1, (64, 20, 16)).astype(np.float32))
    np.save(x, rng.uniform(0, 1, (100, 20, 16)).astype(np.float32))
    out, chip, st = tmp_path / "d", tmp_path / "chip", tmp_path / "chip.npz"
    assert amsc("compile", model, "-o", out, "--calibration", cal).returncode == 0
    r = amsc("chip-state", out, "--seed", "2", "--stuck-rates", "0.1", "0.4", "--sigma", "0.1", "-o", st)
    assert r.returncode == 0, r.stderr
    r = amsc("program", out, "--chip-state", st, "-o", chip)
    assert r.returncode == 0, r.stderr
    m = json.loads((chip / "manifest.json").read_text())
    (rec,) = [layer for layer in m["layers"] if "recurrent" in layer]
    assert {"cal_gain", "cal_offset", "cal_gain_h", "cal_offset_h", "w_scale_h"} <= set(rec["arrays"])
    gh = np.load(chip / rec["arrays"]["cal_gain_h"])
    assert np.ptp(gh) > 0.05 and m["chip"]["calibration"]["columns"] > 2 * gh.size
    regs = {r["layer"]: r for r in m["rtl_datapath"]["requant_scan"]}
    assert regs[rec["name"]]["recurrent"] and regs[rec["name"]]["bits"] == \
        2 * gh.size * (regs[rec["name"]]["mq_bits"] + regs[rec["name"]]["bq_bits"])
    assert regs == {r["layer"]: r for r in json.loads((out / "manifest.json").read_text())["rtl_datapath"]["requant_scan"]}
    for f in ("rtl/main_graph_top.v", "rtl/sim/tb.v"):
        assert (chip / f).read_bytes() == (out / f).read_bytes(), f

    def snr(d):
        r = amsc("evaluate", d, "--inputs", x)
        assert r.returncode == 0, r.stderr
        return json.loads((d / "eval.json").read_text())["ideal"]["snr_db"]

    # the same chip with its recurrent layer left uncalibrated (gain 1, offset 0 on both sides)
    import compiler.passes.calibrate as calibrate

    fit = calibrate._fit_part
    monkeypatch.setattr(calibrate, "_fit_part", lambda ir, tiles, *a: (
        (np.ones(a[-1]), np.zeros(a[-1])) if any(ir.g.nodes[n]["attrs"].get("recurrent")
                                                  for t in tiles for n in ir.g.successors(t)) else fit(ir, tiles, *a)))
    program_design(out, json.loads((out / "manifest.json").read_text()), st, tmp_path / "uncal")
    monkeypatch.undo()
    with_cal, without = snr(chip), snr(tmp_path / "uncal")
    assert with_cal > without + 2.0, (with_cal, without)
    # the placement moved rows and columns: the dense head's each within its bank (a 4-lane tile
    # wrapper writes word line w from gather lane w mod 4 only, and column j reads a pair j mod 4),
    # the recurrent layer's anywhere on its tiles (their wrappers are not banked: BANK 1), and the
    # RTL is bit-exact on them
    rec_tiles = {t for layer in m["layers"] if "recurrent" in layer for t in layer["tiles"]}
    moved = {(t["name"] in rec_tiles, k, i, w) for t in m["tiles"] for k in ("rows", "cols")
             for i, w in enumerate(t["placement"][k]) if w != i}
    assert all((w - i) % 4 == 0 for rec, _, i, w in moved if not rec), moved
    assert any((w - i) % 4 for rec, _, i, w in moved if rec), moved
    # in Icarus with the registers preloaded from the chain's scan.mem (the exported corpus's LSTM
    # shifts its 312 k bits through the chain, in Verilator)
    r = amsc("rtl-sim", chip, "--inputs", x, "--limit", "2", "--simulator", "icarus", "--scan", "preload")
    assert r.returncode == 0 and "bit-exact" in r.stderr and "scan bits preloaded" in r.stderr, r.stderr
    assert requant_regs(json.loads((chip / "rtl" / "program.json").read_text())) == m["rtl_datapath"]["requant_scan"]


def test_spares_are_paid_for_in_the_report(tmp_path, digits):
    """--spare-rows/--spare-cols leave lines of every tile free; report.json prices them, and the
    Monte Carlo places each chip without and then with them."""
    require_tool("libngspice")
    out = tmp_path / "sp"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--spare-rows", "4", "--spare-cols", "2")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert all(t["spares"] == {"rows": 4, "cols": 2} for t in m["tiles"])
    assert all(t["rows"][1] - t["rows"][0] <= 60 and t["cols"][1] - t["cols"][0] <= 30 for t in m["tiles"])
    r = amsc("report", out, "--no-synth")
    assert r.returncode == 0, r.stderr
    sp = json.loads((out / "report.json").read_text())["spares"]
    n = len(m["tiles"])
    assert sp["spare_rows"] == 4 * n and sp["spare_cols"] == 2 * n
    assert sp["cells"] == n * (4 * 64 + 4 * 64 - 2 * 4 * 2)
    assert 0 < sp["area_share"] < 1 and sp["energy_j"] > 0 and "spares:" in r.stderr
    r = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "100",
             "--mc", "2", "--sigma", "0.05", "--stuck-rates", "0.05", "0.2")
    assert r.returncode == 0, r.stderr
    mc = json.loads((out / "eval.json").read_text())["mc"]
    assert mc["remedies"]["applied"] == ["none", "mapping", "spares", "calibration"]
    assert set(mc["remedies"]["ablation"]["one_shot"]) == {"none", "mapping", "spares", "calibration"}


def test_variability_bad_input(sky, digits, tmp_path):
    mlp, cnn = sky / "mlp", sky / "cnn"
    st = tmp_path / "cnn.npz"
    assert amsc("chip-state", cnn, "-o", st).returncode == 0
    out = tmp_path / "o"
    # a chip state of another design
    assert_clean_error(amsc("program", mlp, "--chip-state", st, "-o", out), str(st), "the design 'mlp_digits' has",
                       out=out)
    assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", "sky130_1t1r", "--chip-state", st),
                       str(st), out=out)
    assert_clean_error(amsc("program", mlp, "--chip-state", tmp_path / "none.npz", "-o", out), "no such chip-state",
                       out=out)
    # rates
    for rates, needle in ((("0.6", "0.5"), "summing to less than 1"), (("1", "0"), "in [0, 1)")):
        assert_clean_error(amsc("chip-state", mlp, "-o", tmp_path / "x.npz", "--stuck-rates", *rates), needle)
        assert_clean_error(amsc("evaluate", mlp, "--inputs", digits / "x.npy", "--labels", digits / "y.npy",
                                "--mc", "2", "--stuck-rates", *rates), needle)
    assert_clean_error(amsc("chip-state", mlp, "-o", tmp_path / "x.npz", "--stuck-rates", "-0.1", "0"), "--stuck-rates")
    assert not (tmp_path / "x.npz").exists()
    assert_clean_error(amsc("evaluate", mlp, "--inputs", digits / "x.npy", "--stuck-rates", "0.1", "0.1"), "--mc")
    assert_clean_error(amsc("chip-state", mlp, "-o", mlp / "chip.npz"), "inside the design's folder")
    # spares
    for flag, v, needle in (("--spare-rows", "-1", "--spare-rows"), ("--spare-cols", "-2", "--spare-cols"),
                            ("--spare-rows", "64", "up to 63"), ("--spare-cols", "32", "up to 31")):
        assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", out, flag, v), needle, out=out)


def _train_digits(tmp_path, n=300):
    """n labelled digits of the training split (the bundled designs' own), as a user's calibration set."""
    import sys
    sys.path.insert(0, str(MLP.parent))
    from digits import split

    xtr, _, ytr, _ = split()
    ix = np.random.default_rng(0).choice(len(ytr), n, replace=False)
    np.save(tmp_path / "ftx.npy", xtr[ix].astype(np.float32))
    np.save(tmp_path / "fty.npy", ytr[ix].astype(np.int64))
    return tmp_path / "ftx.npy", tmp_path / "fty.npy"


def test_fine_tuned_chip(sky, digits, tmp_path):
    """program --finetune-data fits one chip's final layer (within what its stuck pairs reach) and
    its requantizer to labelled inputs: the loss on them falls, the chip keeps its held-out accuracy,
    the RTL is the design's (new levels and constants are scan contents) and runs bit-exactly; bad
    labels are refused in one line."""
    require_tool("iverilog")
    out = sky / "mlp"
    st = tmp_path / "chip.npz"
    # half the cells stuck: the fit rewrites pairs (at the cited rates it finds nothing to change)
    assert amsc("chip-state", out, "--seed", "5", "--stuck-rates", "0.1", "0.4", "-o", st).returncode == 0
    x, y = _train_digits(tmp_path)
    plain, ft = tmp_path / "plain", tmp_path / "ft"
    assert amsc("program", out, "--chip-state", st, "-o", plain).returncode == 0
    r = amsc("program", out, "--chip-state", st, "-o", ft, "--finetune-data", x, y)
    assert r.returncode == 0, r.stderr
    assert "fine-tuned fc2 on 300 labelled inputs" in r.stderr
    f = json.loads((ft / "manifest.json").read_text())["chip"]["finetune"]
    assert f["layer"] == "fc2" and f["samples"] == 300 and f["parameters"] == 32 * 10 + 2 * 10
    assert f["loss_after"] < f["loss_before"] and f["accuracy_after"] > f["accuracy_before"]
    assert f["cells_rewritten"] > 0
    from compiler.eval.run import Design

    # the rewritten pairs stay within what each pair reaches: a stuck cell reads what it is stuck at
    d0, d1 = Design(plain), Design(ft)
    for t in d1.manifest["tiles"]:
        p0, p1 = d0.ir.g.nodes[t["name"]]["params"], d1.ir.g.nodes[t["name"]]["params"]
        for k, g in ((0, "gpos"), (1, "gneg")):
            s = p1["stuck"][k] != 0
            assert np.array_equal(p1[g][s], p0[g][s])
        if t["layer"] != "fc2":
            assert np.array_equal(p0["lpos"], p1["lpos"]) and np.array_equal(p0["gpos"], p1["gpos"])
        # a pair the fit left alone keeps its programmed cells (no new programming error)
        kept = (p0["lpos"] == p1["lpos"]) & (p0["lneg"] == p1["lneg"])
        assert np.array_equal(p1["gpos"][kept], p0["gpos"][kept]) and np.array_equal(p1["gneg"][kept], p0["gneg"][kept])
    for f_ in ("rtl/mlp_digits_top.v", "rtl/sim/tb.v"):
        assert (ft / f_).read_bytes() == (out / f_).read_bytes()
    accs = []
    for d in (plain, ft):
        r = amsc("evaluate", d, "--inputs", digits / "x.npy", "--labels", digits / "y.npy")
        assert r.returncode == 0, r.stderr
        accs.append(json.loads((d / "eval.json").read_text())["ideal"]["accuracy"])
    assert accs[1] > accs[0], accs        # held out: measured 91.56 -> 92.89 %
    r = amsc("rtl-sim", ft, "--inputs", digits / "x.npy", "--limit", "3")
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    # bad input
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(299, np.int64))
    assert_clean_error(amsc("program", out, "--chip-state", st, "-o", tmp_path / "b", "--finetune-data", x, bad),
                       str(bad), "300 labels", out=tmp_path / "b")
    np.save(bad, np.full(300, 10, np.int64))
    assert_clean_error(amsc("program", out, "--chip-state", st, "-o", tmp_path / "b", "--finetune-data", x, bad),
                       "integer labels in [0, 10)", out=tmp_path / "b")
    assert_clean_error(amsc("compile", MLP / "model.onnx", "-o", tmp_path / "b", "--finetune-data", x, y),
                       "--finetune-data", "--chip-state", out=tmp_path / "b")


def test_finetune_chip_without_a_change_is_the_calibrated_chip(sky, digits, monkeypatch):
    """evaluate's fine-tuning of a Monte-Carlo chip puts the fit's scale and bias into the columns'
    calibration in the units the chip reads: a fit that changes nothing (monkeypatched) gives the
    calibrated chip's outputs, on a placed chip with stuck cells under its final layer."""
    from compiler.design.chipstate import draw_state
    from compiler.eval import evaluate as ev
    from compiler.eval.run import Design
    from compiler.passes import finetune as ft

    d = Design(sky / "mlp")
    x = d.load_inputs(digits / "x.npy")[:60]
    y = np.load(digits / "y.npy")[:60]
    var = {**ev.device_model(d.manifest, None, None, (0.06, 0.3)), "read_noise_sigma": 0.0}
    rng = np.random.default_rng(3)
    state = draw_state(d.manifest, 0, 0.06, 0.3, 0.0, rng=rng)
    reads, weights, _ = ev.calibration_reads(d, x)
    placed = ev.place_chip(ev._tile_levels(d), state, weights)
    lv: dict = {}
    g = ev.draw_chip(d, var, 0.0, rng, True, state=state, placement=placed, levels_out=lv)
    cal = ev.column_calibration(d, g, reads)
    tune = ev.finetune_setup(d, (digits / "x.npy", digits / "y.npy"))
    assert d.ir.g.nodes[tune["layer"]]["origin"] == "fc2"
    assert any(np.isnan(lv[t][2]).sum() < lv[t][2].size for t in tune["tiles"])      # stuck cells under fc2
    monkeypatch.setattr(ft, "fit_final", lambda h, y_, d0, lo, hi, unit, b0, top: {
        "D": d0, "alpha": np.ones(d0.shape[1]), "beta": b0, "iterations": 0})
    g2, cal2 = ev.finetune_chip(d, tune, g, cal, lv, 0.0, var, rng)
    for t in tune["tiles"]:
        assert np.array_equal(g2[t][0], g[t][0]) and np.array_equal(g2[t][1], g[t][1])
    a = d.run(x, "ideal", conductances=g, column_cal=cal)[0]
    b = d.run(x, "ideal", conductances=g2, column_cal=cal2)[0]
    assert np.array_equal(a.argmax(1), b.argmax(1)) and np.allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(a).max())
    assert np.mean(b.argmax(1) == y) > 0.8


def test_evaluate_mc_fine_tunes_each_chip(sky, digits, tmp_path):
    """evaluate --mc --finetune-data adds the fine-tuning remedy after calibration: each chip's final
    layer is fitted to labelled training digits and scored on the held-out ones; the remedy is the
    default applied to mc.modes, in eval.html, and bad uses are refused in one line."""
    require_tool("iverilog")
    x, y = _train_digits(tmp_path)
    # 65 % of the cells stuck, the regime --route-banks off is for (every row free to take any word
    # line): calibration leaves the chips at ~77 % (docs/variability.md)
    out = tmp_path / "mlp_free"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--pdk", "sky130_1t1r", "--route-banks", "off")
    assert r.returncode == 0, r.stderr
    e, r = _mc(out, digits, "--stuck-rates", "0.15", "0.5", "--finetune-data", x, y)
    # the default banks (a quarter of the word lines to each row, of the pairs to each column) place
    # these chips worse
    banked, _ = _mc(sky / "mlp", digits, "--stuck-rates", "0.15", "0.5")
    for mode, abl in banked["mc"]["remedies"]["ablation"].items():
        assert abl["mapping"]["mean"] < e["mc"]["remedies"]["ablation"][mode]["mapping"]["mean"] - 0.1, mode
    rem = e["mc"]["remedies"]
    assert rem["applied"] == ["none", "mapping", "calibration", "finetune"] and rem["default"] == "finetune"
    for mode, abl in rem["ablation"].items():
        assert abl["calibration"]["mean"] > abl["mapping"]["mean"] > abl["none"]["mean"] + 0.3
        # the fit recovers part of what calibration leaves, on digits it never saw (measured +6.5
        # and +4.4 points)
        assert abl["finetune"]["mean"] > abl["calibration"]["mean"] + 0.02, (mode, abl)
        assert e["mc"]["modes"][mode]["mean"] == abl["finetune"]["mean"]
    assert all("finetune" in p for p in e["mc"]["fault_curve"])
    assert "fine-tuned final layer" in (out / "eval.html").read_text() and "finetune" in r.stderr
    ev = ("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy")
    assert_clean_error(amsc(*ev, "--finetune-data", x, y), "--finetune-data", "--mc")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full(300, 10, np.int64))
    assert_clean_error(amsc(*ev, "--mc", "2", "--finetune-data", x, bad), "integer labels in [0, 10)")
    st = tmp_path / "chip.npz"
    assert amsc("chip-state", out, "--seed", "1", "-o", st).returncode == 0
    assert amsc("program", out, "--chip-state", st, "-o", tmp_path / "chip").returncode == 0
    # with one bank the placement moves rows across the lanes' banks, and the tile wrappers (every
    # lane decoding every word line) run it bit-exactly
    m = json.loads((tmp_path / "chip" / "manifest.json").read_text())
    assert any((w - i) % 4 for t in m["tiles"] for i, w in enumerate(t["placement"]["rows"]))
    r = amsc("rtl-sim", tmp_path / "chip", "--inputs", digits / "x.npy", "--limit", "3")
    assert r.returncode == 0 and "bit-exact" in r.stderr, r.stderr
    assert_clean_error(amsc("evaluate", tmp_path / "chip", "--inputs", digits / "x.npy", "--labels", digits / "y.npy",
                            "--mc", "2", "--finetune-data", x, y), "programmed for one chip", "amsc program")
