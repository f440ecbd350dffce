"""Simulation tests: the emitted netlists run in ngspice and match numpy; verify can fail."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from compiler.verify.checks import lsb
from compiler.verify.golden import tile_currents
from conftest import MLP, amsc, require_tool


@pytest.fixture(autouse=True)
def _ngspice():
    require_tool("ngspice", "libngspice")


def _copy(src, dst):
    shutil.copytree(src, dst)
    (dst / "verify.json").unlink(missing_ok=True)
    return dst


def _rewrite(out, rel, fn, fix_manifest=True):
    p = out / rel
    p.write_text(fn(p.read_text()))
    if fix_manifest:  # simulate a miscompile: files consistent with the manifest but wrong
        m = json.loads((out / "manifest.json").read_text())
        for f in m["files"]:
            if f["path"] == rel:
                f["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
        (out / "manifest.json").write_text(json.dumps(m))


def test_verify_passes_with_stated_tolerance(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    r = amsc("verify", out, "--jobs", "2", "--vectors", "8", "--seed", "3")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    man = json.loads((out / "manifest.json").read_text())
    assert rep["passed"] is True
    tiles = {t["name"]: t for t in man["tiles"]}
    assert sorted(b["name"] for b in rep["blocks"]) == sorted(tiles) and len(tiles) == 5
    for b in rep["blocks"]:
        t = tiles[b["name"]]
        assert set(b) >= {"name", "passed", "vectors", "max_abs_err", "tolerance", "seconds", "error"}
        assert b["passed"] and b["error"] is None and b["vectors"] == 8
        assert b["simulator"].startswith("ngspice-4")
        one_lsb = lsb(t["adc_full_scale_a"], t["adc_bits"])
        assert one_lsb <= b["tolerance"] <= one_lsb * 1.01
        # ideal wires: ngspice agrees with Kirchhoff far below one LSB
        assert b["max_abs_err"] < 1e-6 * one_lsb
        assert b["max_abs_current"] > 10 * one_lsb


def test_netlist_conductances_match_npy(mlp_out):
    man = json.loads((mlp_out / "manifest.json").read_text())
    for t in man["tiles"]:
        text = (mlp_out / t["subckt_file"]).read_text()
        gpos = np.load(mlp_out / t["conductances"]["gpos"])
        gneg = np.load(mlp_out / t["conductances"]["gneg"])
        got = {"P": np.zeros_like(gpos), "N": np.zeros_like(gneg)}
        for side, i, j, val in re.findall(r"^R([PN])_(\d+)_(\d+) wl_\d+ bl[pn]_\d+ (\S+)$", text, re.M):
            got[side][int(i), int(j)] = 1.0 / float(val)
        np.testing.assert_allclose(got["P"], gpos, rtol=1e-9)
        np.testing.assert_allclose(got["N"], gneg, rtol=1e-9)


def test_corrupted_conductance_fails_verify(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    man = json.loads((out / "manifest.json").read_text())
    victim = sorted(t["name"] for t in man["tiles"])[1]
    sub = f"spice/tiles/{victim}.sp"   # the testbench includes it
    # one device programmed to the wrong state: the HRS/LRS swap of RP_3_2
    _rewrite(out, sub, lambda s: re.sub(r"^(RP_3_2 \S+ \S+) (\S+)$",
                                       lambda m: f"{m.group(1)} {'1000000' if float(m.group(2)) < 5e5 else '10000'}",
                                       s, flags=re.M))
    r = amsc("verify", out, "--jobs", "2", "--vectors", "16")
    assert r.returncode == 1, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    assert rep["passed"] is False
    res = {b["name"]: b for b in rep["blocks"]}
    assert not res[victim]["passed"] and res[victim]["max_abs_err"] > res[victim]["tolerance"]
    assert all(b["passed"] for n, b in res.items() if n != victim)


def test_broken_deck_is_reported_and_others_finish(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    man = json.loads((out / "manifest.json").read_text())
    victim = sorted(t["name"] for t in man["tiles"])[0]
    _rewrite(out, f"spice/tiles/{victim}.sp", lambda s: s.replace("RP_0_0 wl_0 blp_0", "RP_0_0 wl_0"))
    r = amsc("verify", out, "--jobs", "2", "--vectors", "4")
    assert r.returncode == 1
    res = {b["name"]: b for b in json.loads((out / "verify.json").read_text())["blocks"]}
    assert res[victim]["error"] and "ngspice" in res[victim]["error"]
    assert all(b["passed"] for n, b in res.items() if n != victim)


def test_tampered_output_is_bad_input(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    _rewrite(out, "spice/chip.sp", lambda s: s + "* edited\n", fix_manifest=False)
    r = amsc("verify", out)
    assert r.returncode == 2 and "chip.sp" in r.stderr and "sha256" in r.stderr
    (out / "spice/chip.sp").unlink()
    r = amsc("verify", out)
    assert r.returncode == 2 and "missing" in r.stderr


def test_chip_deck_simulates_all_tiles(mlp_out):
    from compiler.sim.ngspice import NgspiceSession

    man = json.loads((mlp_out / "manifest.json").read_text())
    deck = (mlp_out / "spice/chip.sp").read_text()
    sources = re.findall(r"^(V\S+) (\S+) 0 DC 0$", deck, re.M)
    rng = np.random.default_rng(7)
    values = rng.uniform(0, man["pdk"]["v_read"], size=(3, len(sources)))
    probes = [f"{t['name']}_out_{j}" for t in man["tiles"] for j in range(t["cols"][1] - t["cols"][0])]
    # .include paths are relative to the deck's folder
    volts = NgspiceSession().sweep(deck, "chip.sp", [s for s, _ in sources], values, probes,
                                   base_dir=mlp_out / "spice")
    net_value = {net: values[:, k] for k, (_, net) in enumerate(sources)}
    col = 0
    for t in man["tiles"]:
        rows = range(t["rows"][0], t["rows"][1])
        v = np.stack([net_value[f"{t['layer']}_x_{i}"] for i in rows], axis=1)
        golden = tile_currents(v, np.load(mlp_out / t["conductances"]["gpos"]),
                               np.load(mlp_out / t["conductances"]["gneg"]))
        n = golden.shape[1]
        measured = -volts[:, col:col + n] / t["rf_ohm"]
        np.testing.assert_allclose(measured, golden, rtol=1e-6, atol=1e-12)
        col += n


def test_cnn_tiles_verify(tmp_path):
    out = tmp_path / "cnn"
    r = amsc("compile", MLP.parent / "cnn_digits" / "model.onnx", "-o", out, "--tile", "32x32")
    assert r.returncode == 0, r.stderr
    r = amsc("verify", out, "--vectors", "6", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "verify.json").read_text())
    assert len(rep["blocks"]) == 12 and all(b["passed"] and b["max_abs_err"] < 1e-6 * b["lsb"] for b in rep["blocks"])
