"""Verification at scale: engines agree, Dask matches local, isolation, cache, bad input."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time

import numpy as np
import pytest

from compiler.sim.executor import run_local
from compiler.sim.mna import MnaEngine
from compiler.sim.netlist import read_deck
from conftest import MLP, amsc, require_tool

SKIP_KEYS = {"seconds", "cached"}


@pytest.fixture(autouse=True)
def _ngspice():
    require_tool("ngspice", "libngspice")


@pytest.fixture(scope="module")
def mlp_par(tmp_path_factory):
    out = tmp_path_factory.mktemp("par") / "out"
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32", "--parasitics")
    assert r.returncode == 0, r.stderr
    return out


def _blocks(out):
    rep = json.loads((out / "verify.json").read_text())
    return rep, {b["name"]: {k: v for k, v in b.items() if k not in SKIP_KEYS} for b in rep["blocks"]}


@pytest.mark.parametrize("which", ["mlp_out", "mlp_par"])
def test_mna_engine_agrees_with_ngspice(which, request):
    from compiler.sim.ngspice import session

    out = request.getfixturevalue(which)
    man = json.loads((out / "manifest.json").read_text())
    rng = np.random.default_rng(11)
    for t in man["tiles"]:
        deck = read_deck(out / t["testbench"])
        rows, cols = t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]
        v = rng.uniform(0, t["v_read"], size=(5, rows))
        src, probes = [f"VIN_{i}" for i in range(rows)], [f"out_{j}" for j in range(cols)]
        a = session().sweep(deck, t["name"], src, v, probes)
        b = MnaEngine().sweep(deck, t["name"], src, v, probes)
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b)), t["name"]
        assert np.max(np.abs(b)) > 0.01  # volts: a real signal, not zeros agreeing with zeros


def test_parasitics_report_ir_drop_and_threshold_is_configurable(mlp_par, tmp_path):
    out = shutil.copytree(mlp_par, tmp_path / "o")
    r = amsc("verify", out, "--vectors", "16", "--tolerance-lsb", "50", "--no-cache")
    assert r.returncode == 0, r.stderr
    rep, blocks = _blocks(out)
    for b in blocks.values():
        assert b["max_abs_err"] > 1e-3 * b["lsb"], "IR drop must show up as error"
        assert 0 < b["rms_err"] <= b["max_abs_err"] and 0 <= b["within_lsb"] <= 1
        assert b["tolerance"] == pytest.approx(50 * b["lsb"], rel=1e-3)
    worst = max(b["max_abs_err"] / b["lsb"] for b in blocks.values())
    r = amsc("verify", out, "--vectors", "16", "--tolerance-lsb", f"{worst * 0.5:.6f}", "--no-cache")
    assert r.returncode == 1


def test_mna_engine_verify_matches_ngspice_verify(mlp_par, tmp_path):
    res = {}
    for eng in ("ngspice", "mna"):
        out = shutil.copytree(mlp_par, tmp_path / eng)
        r = amsc("verify", out, "--engine", eng, "--vectors", "8", "--tolerance-lsb", "50")
        assert r.returncode == 0, r.stderr
        res[eng] = _blocks(out)[1]
    for name, b in res["ngspice"].items():
        assert res["mna"][name]["max_abs_err"] == pytest.approx(b["max_abs_err"], rel=1e-5)


def test_dask_cluster_gives_identical_results(mlp_out, tmp_path):
    import distributed

    local = shutil.copytree(mlp_out, tmp_path / "local")
    remote = shutil.copytree(mlp_out, tmp_path / "remote")
    assert amsc("verify", local, "--jobs", "2", "--vectors", "6").returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        r = amsc("verify", remote, "--scheduler", cluster.scheduler_address, "--vectors", "6")
    assert r.returncode == 0, r.stderr
    _, a = _blocks(local)
    _, b = _blocks(remote)
    assert a == b and len(a) == 5


def test_unreachable_scheduler_fails_fast(mlp_out, tmp_path):
    out = shutil.copytree(mlp_out, tmp_path / "o")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = amsc("verify", out, "--scheduler", f"tcp://127.0.0.1:{port}", "--no-cache")
    assert r.returncode == 2, r.stderr
    assert "no Dask scheduler answered" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert time.monotonic() - t0 < 60


def _crashy(x):
    if x == 2:
        os._exit(3)
    if x == 4:
        time.sleep(60)
    if x == 5:
        raise ValueError("bad block")
    return x * 10


def _slow_start():
    time.sleep(2)


def test_a_slow_worker_start_is_not_charged_to_its_task():
    """On a loaded machine a worker's spawn and simulator start-up can outlast a short timeout: the
    task's time counts from when the worker has started (a 2 s start-up, a 1 s timeout: no error)."""
    res = run_local(_crashy, [0, 1, 3], jobs=2, timeout=1, init=_slow_start)
    assert res == [("ok", 0), ("ok", 10), ("ok", 30)]


def test_pool_isolates_crash_hang_and_exception():
    res = run_local(_crashy, list(range(8)), jobs=2, timeout=3)
    assert [r[1] for r in res if r[0] == "ok"] == [0, 10, 30, 60, 70]
    assert res[2][0] == "error" and ("crashed" in res[2][1] or "died" in res[2][1])
    assert res[4] == ("error", "timed out after 3 s")
    assert res[5][0] == "error" and "bad block" in res[5][1]


def test_slow_block_times_out_and_others_finish(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "w1.npy", rng.normal(size=(128, 256)))
    np.save(tmp_path / "w2.npy", rng.normal(size=(4, 128)))
    (tmp_path / "m.yaml").write_text(
        "amsc_graph: 1\ninputs: [{name: x, shape: [256]}]\nnodes:\n"
        "  - {name: big, op: dense, weight: {file: w1.npy}, activation: relu}\n"
        "  - {name: small, op: dense, weight: {file: w2.npy}}\noutputs: [small]\n")
    out = tmp_path / "o"
    assert amsc("compile", tmp_path / "m.yaml", "-o", out, "--tile", "256x256", "--parasitics").returncode == 0
    r = amsc("verify", out, "--jobs", "2", "--timeout", "1", "--vectors", "4", "--tolerance-lsb", "1000")
    assert r.returncode == 1
    _, blocks = _blocks(out)
    assert blocks["big_r0c0"]["error"] == "timed out after 1 s"
    assert blocks["small_r0c0"]["passed"] and blocks["small_r0c0"]["error"] is None


def test_cache_second_run_simulates_nothing(mlp_out, tmp_path):
    out = shutil.copytree(mlp_out, tmp_path / "o")
    r1 = amsc("verify", out, "--vectors", "5")
    rep1, b1 = _blocks(out)
    r2 = amsc("verify", out, "--vectors", "5")
    rep2, b2 = _blocks(out)
    assert r1.returncode == r2.returncode == 0
    assert rep1["simulated"] == 5 and rep2["simulated"] == 0 and "no simulation" in r2.stderr
    assert b1 == b2 and all(b["cached"] for b in rep2["blocks"])
    r3 = amsc("verify", out, "--vectors", "6")  # a different question is not answered from the cache
    assert _blocks(out)[0]["simulated"] == 5 and r3.returncode == 0
    # a damaged entry is simulated again, in one run, without a traceback: a tile's that is not a
    # block, a readout's waveform that is not an .npz
    tile_entry = next(p for p in sorted((out / ".verify-cache").glob("*.json"))
                      if not p.name.startswith("readout-") and json.loads(p.read_text())["vectors"] == 6)
    tile_entry.write_text("[1]")
    (ro_wave,) = [p for p in (out / ".verify-cache").glob("readout-*.npz")
                  if json.loads(p.with_suffix(".json").read_text())["share"] == rep2["readout"]["share"]][:1]
    ro_wave.write_bytes(b"PK\x03\x04 not a zip")
    r4 = amsc("verify", out, "--vectors", "6")
    assert r4.returncode == 0 and "Traceback" not in r4.stderr, r4.stderr
    assert "1 tile(s) simulated, 4 from the cache; 1 of" in r4.stderr, r4.stderr
    shutil.rmtree(out / ".verify-cache")
    (out / ".verify-cache").write_text("not a folder")
    r5 = amsc("verify", out, "--vectors", "6")
    assert r5.returncode == 2 and r5.stderr.strip().splitlines() == [
        f"error: {out / '.verify-cache'}: is not a folder: verify keeps its cache there (remove it, or run with "
        "--no-cache)"], r5.stderr


def test_control_blocks_are_refused(mlp_out, tmp_path):
    from compiler.errors import SimulationError
    from compiler.sim.ngspice import session

    with pytest.raises(SimulationError, match=r"\.control"):
        session().sweep("* t\nV1 a 0 DC 0\nR1 a 0 1k\n.control\nshell touch x\n.endc\n.op\n.end\n", "t",
                        ["V1"], np.ones((2, 1)), ["a"])


def test_missing_ngspice_library_says_how_to_install(mlp_out, tmp_path):
    import subprocess

    out = shutil.copytree(mlp_out, tmp_path / "o")
    env = {**os.environ, "NGSPICE_LIBRARY_PATH": str(tmp_path / "libngspice-missing.so")}
    r = subprocess.run([sys.executable, "-m", "compiler.cli", "verify", str(out)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2
    assert "make setup" in r.stderr and "libngspice" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_html_report_has_a_histogram_per_block(mlp_out, tmp_path):
    out = shutil.copytree(mlp_out, tmp_path / "o")
    assert amsc("verify", out, "--vectors", "4").returncode == 0
    page = (out / "verify.html").read_text()
    for t in json.loads((out / "manifest.json").read_text())["tiles"]:
        png = out / "verify-report" / f"{t['name']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"verify-report/{t['name']}.png" in page


def test_sample_keeps_each_layers_largest_tile_and_names_them(mlp_out, tmp_path):
    out = shutil.copytree(mlp_out, tmp_path / "o")
    man = json.loads((out / "manifest.json").read_text())
    r = amsc("verify", out, "--sample", "3", "--seed", "4", "--vectors", "4", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "a sample: 3 of 5 tiles" in r.stderr
    rep = json.loads((out / "verify.json").read_text())
    names = [b["name"] for b in rep["blocks"]]
    assert rep["sample"]["names"] == names and len(names) == 3 and rep["sample"]["seed"] == 4
    size = {t["name"]: (t["rows"][1] - t["rows"][0]) * (t["cols"][1] - t["cols"][0]) for t in man["tiles"]}
    for layer in {t["layer"] for t in man["tiles"]}:
        tiles = [t["name"] for t in man["tiles"] if t["layer"] == layer]
        assert max(size[t] for t in tiles) in {size[n] for n in names if n in tiles}, layer
    assert "A sample." in (out / "verify.html").read_text()
    # the same seed draws the same sample; a sample as large as the design takes every tile, with a note
    amsc("verify", out, "--sample", "3", "--seed", "4", "--vectors", "4")
    assert [b["name"] for b in json.loads((out / "verify.json").read_text())["blocks"]] == names
    r = amsc("verify", out, "--sample", "99", "--vectors", "4")
    assert r.returncode == 0 and "all of them are verified" in r.stderr
    assert len(json.loads((out / "verify.json").read_text())["blocks"]) == len(man["tiles"])


def test_sample_zero_is_refused(mlp_out):
    from helpers import assert_clean_error

    assert_clean_error(amsc("verify", mlp_out, "--sample", "0"), "--sample", "0")


@pytest.mark.parametrize("engine", ["ngspice", "mna"])
def test_transfer_sign_off_equals_one_point_per_vector(mlp_par, engine):
    """A linear tile with more vectors than word lines is signed off from its transfer (rows + 1
    operating points, then superposition): the same outputs as one operating point per vector."""
    from compiler.verify.run import block_spec, plan_block, verify_block

    man = json.loads((mlp_par / "manifest.json").read_text())
    t = man["tiles"][0]
    rows = t["rows"][1] - t["rows"][0]
    spec = block_spec(mlp_par, man, t, 0, rows + 40, 3, 100.0, engine)
    assert [p["mode"] for p in plan_block(t, rows + 40)] == ["transfer"]
    assert [p["mode"] for p in plan_block(t, rows)] == ["sweep"]
    via_transfer = verify_block(spec, t)
    direct = verify_block(spec)
    assert abs(via_transfer["max_abs_err"] - direct["max_abs_err"]) <= 1e-6 * direct["max_abs_current"]
    assert abs(via_transfer["rms_err"] - direct["rms_err"]) <= 1e-6 * direct["max_abs_current"]


def test_reports_summarize_per_layer_above_the_detail_limit(mlp_out, tmp_path, monkeypatch):
    from compiler.verify import report

    out = shutil.copytree(mlp_out, tmp_path / "o")
    monkeypatch.setattr(report, "DETAIL_MAX", 2)
    from compiler.verify.run import verify_dir

    monkeypatch.setattr("compiler.verify.run.DETAIL_MAX", 2)
    rep = verify_dir(out, jobs=1, vectors=4)
    assert rep["passed"] and len(rep["blocks"]) == 5
    page = (out / "verify.html").read_text()
    # no block histograms: only the shared-ADC readout's transient is drawn
    assert "Per layer" in page and "Failed blocks (0; 5 in all)" in page
    assert page.count("<img") == page.count("readout.png") == 1
    table = report.summary_table(rep)
    assert table.row_count == len({b["layer"] for b in rep["blocks"]})
