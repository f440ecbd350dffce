"""amsc explore: every point of a grid of compile options compiled and measured as 'evaluate' and
'report' measure a design, the Pareto flags right, the output deterministic, and bad grids refused
in one line before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error

GRID = ["tile=64x64,32x32", "adc-bits=6,8", "adc-share=1,8"]


@pytest.fixture(scope="module")
def explored(tmp_path_factory, digits):
    require_tool("libngspice")
    d = tmp_path_factory.mktemp("explore")
    for name in ("a", "b"):
        r = amsc("explore", MLP / "model.onnx", "-o", d / name, "--grid", *GRID, "--inputs", digits / "x.npy",
                 "--labels", digits / "y.npy", "--samples", "60", "--no-synth", "--jobs", "2")
        assert r.returncode == 0, r.stderr
    return d, r


def test_points_measured_as_report_and_evaluate_measure_them(explored, digits, tmp_path):
    d, r = explored
    rep = json.loads((d / "a" / "explore.json").read_text())
    assert (d / "a" / "explore.json").read_bytes() == (d / "b" / "explore.json").read_bytes()   # deterministic
    pts = rep["points"]
    assert len(pts) == 8 and rep["failed"] == 0 and rep["quality"] == "accuracy"
    assert [p["options"] for p in pts[:2]] == [{"tile": "64x64", "adc-bits": "6", "adc-share": "1"},
                                               {"tile": "64x64", "adc-bits": "6", "adc-share": "8"}]
    # one point compiled and measured by hand: the same figures
    p = next(p for p in pts if p["options"] == {"tile": "32x32", "adc-bits": "6", "adc-share": "8"})
    assert p["compile_options"]["tile_rows"] == 32 and p["compile_options"]["adc_bits"] == 6
    out = tmp_path / "p"
    assert amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32", "--adc-bits", "6", "--adc-share",
                "8").returncode == 0
    r2 = amsc("report", out, "--inputs", digits / "x.npy", "--samples", "60", "--no-synth", "--engine", "mna")
    assert r2.returncode == 0, r2.stderr
    hand = json.loads((out / "report.json").read_text())
    for k in ("energy_per_inference_j", "area_mm2", "latency_s", "tops_per_w", "tops_per_mm2"):
        assert p[k] == pytest.approx(hand[k], rel=1e-9), k
    assert p["throughput_per_s"] == hand["throughput_per_s"] == pytest.approx(1 / hand["pipeline"]["interval_s"])
    assert p["adcs"] == hand["periphery"]["adcs"] > 0
    assert p["adc_utilization"] == pytest.approx(hand["periphery"]["adc_utilization"], rel=1e-9)
    assert 0 < p["adc_utilization"] < 1
    assert hand["throughput_per_s"] > 1 / hand["latency_s"]     # the default pipeline
    r3 = amsc("evaluate", out, "--inputs", digits / "x.npy", "--labels", digits / "y.npy", "--samples", "60")
    assert r3.returncode == 0, r3.stderr
    ev = json.loads((out / "eval.json").read_text())
    assert p["accuracy"] == ev["ideal"]["accuracy"] and p["snr_db"] == pytest.approx(ev["ideal"]["snr_db"])
    # the ADC sharing changes area and latency, not the network's accuracy
    q = next(q for q in pts if q["options"] == {"tile": "32x32", "adc-bits": "6", "adc-share": "1"})
    assert q["accuracy"] == p["accuracy"] and q["area_mm2"] > p["area_mm2"]
    # Pareto: no flagged point is beaten in all three figures, every other point is
    v = np.array([[x["accuracy"], x["tops_per_w"], x["tops_per_mm2"]] for x in pts])
    for i, x in enumerate(pts):
        beaten = np.any(np.all(v >= v[i], axis=1) & np.any(v > v[i], axis=1))
        assert x["pareto"] == (not beaten), x["index"]
    assert any(x["pareto"] for x in pts)
    assert set(rep["fronts"]) == {"accuracy_vs_tops_per_w", "tops_per_w_vs_tops_per_mm2"}
    html = (d / "a" / "explore.html").read_text()
    assert "Pareto" in html and "explore-report/accuracy_vs_tops_per_w.png" in html
    assert (d / "a" / "explore-report" / "tops_per_w_vs_tops_per_mm2.png").is_file()
    assert not (d / "a" / "points").exists()       # designs only with --keep-designs
    assert "on the Pareto front" in r.stderr


def test_refused_points_are_kept_with_their_error(tmp_path, digits):
    require_tool("libngspice")
    out = tmp_path / "e"
    r = amsc("explore", MLP / "model.onnx", "-o", out, "--grid", "max-tiles=1,4", "--inputs", digits / "x.npy",
             "--samples", "8", "--no-synth", "--jobs", "1", "--keep-designs")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "explore.json").read_text())
    bad, good = rep["points"]
    assert rep["failed"] == 1 and "the limit is --max-tiles 1" in bad["error"] and not bad["pareto"]
    assert good["pareto"] and good["snr_db"] > 10 and rep["quality"] == "snr_db"
    assert (out / "points" / "p001" / "manifest.json").is_file()


def test_explore_bad_input(tmp_path, digits):
    out = tmp_path / "o"
    m = MLP / "model.onnx"
    for grid, needle in ((["pipelining=on"], "'pipelining' is not a compile option"), (["lanes=0,8"], "lanes=0"),
                         (["pipeline=1,0"], "pipeline=0"),
                         (["adc-bits=0,8"], "adc-bits=0"), (["tile=64x65"], "tile=64x65"),
                         (["adc-share=0"], "adc-share=0"), (["tile"], "is not KEY=V1,V2"),
                         # refused before any point runs, as the tile pass would refuse it on any model
                         (["adc-share=8,3"], "adc-share=3: --adc-share: 3; expected a divisor"),
                         (["tile=128x128,64x64", "adc-share=64"], "tile=64x64, adc-share=64: --adc-share: 64"),
                         (["spare-cols=32"], "--spare-cols"), (["pdk=nope"], "unknown PDK"),
                         (["tile=64x64", "tile=32x32"], "given twice"), (["out=x"], "'out' is not a compile option"),
                         (["chip-state=c.npz"], "'chip-state' is not a compile option"),
                         (["parasitics=maybe"], "on or off"), (["tile=64x64,64x64"], "repeats a value")):
        assert_clean_error(amsc("explore", m, "-o", out, "--grid", *grid), needle, out=out)
    assert_clean_error(amsc("explore", m, "-o", out, "--labels", digits / "y.npy"), "--inputs", out=out)
    assert_clean_error(amsc("explore", tmp_path / "none.onnx", "-o", out), "no such model file", out=out)
    assert_clean_error(amsc("explore", m, "-o", out, "--inputs", digits / "x.npy", "--samples", "100000"),
                       "--samples 100000", out=out)
    # every point refused: nothing is written, the first point's reason is named
    assert_clean_error(amsc("explore", m, "-o", out, "--grid", "max-tiles=1", "tile=32x32", "--no-synth"),
                       "no point of the grid", "--max-tiles 1", out=out)
    # a folder that is not an earlier explore is never replaced
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert_clean_error(amsc("explore", m, "-o", keep, "--grid", "tile=64x64", "adc-share=1", "adc-bits=8"),
                       "not an earlier 'amsc explore' output")
    assert (keep / "notes.txt").read_text() == "mine"


def test_explore_on_a_dask_cluster_gives_the_same_points(tmp_path, digits):
    """--scheduler runs the points on Dask workers (which share this file system); explore.json is
    byte for byte the local pool's."""
    require_tool("libngspice")
    import distributed

    args = ["--grid", "tile=64x64,32x32", "--inputs", digits / "x.npy", "--samples", "8", "--no-synth"]
    assert amsc("explore", MLP / "model.onnx", "-o", tmp_path / "local", *args, "--jobs", "2").returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        r = amsc("explore", MLP / "model.onnx", "-o", tmp_path / "dask", *args, "--scheduler", cluster.scheduler_address)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dask" / "explore.json").read_bytes() == (tmp_path / "local" / "explore.json").read_bytes()
