"""Each layer's outputs per ADC from its pipeline stage's slack (compile --adc-balance on,
backend/verilog.adc_balance), and its bad input. Simulated end to end in tests/sim/test_readout.py."""

from __future__ import annotations

import dataclasses
import json

import pytest

from compiler.backend.verilog import (MAX_ADC_CHANNELS, adc_balance, adc_tiles, layer_adcs, macro_latency,
                                      rtl_cycles, step_lanes)
from compiler.cli import _grid_parser, _grid_point_options
from compiler.errors import InputError
from compiler.options import CompileOptions
from compiler.passes.tile import adc_balance_of, check_tile_options
from compiler.pdk import load_pdk
from conftest import MLP, amsc

CNN = MLP.parent / "cnn_digits" / "model.onnx"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """cnn_digits' program as compiled with the defaults (4 lanes, a 4-stage pipeline, 8 outputs an ADC)."""
    out = tmp_path_factory.mktemp("bal") / "o"
    r = amsc("compile", CNN, "-o", out)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "rtl" / "program.json").read_text())


def _interval(prog, pdk, shares, stages):
    lat = [macro_latency(pdk, m) for m in shares]
    return rtl_cycles(prog, step_lanes(prog, 4, lat), lat, stages)["interval"]


def _adcs(st, m):
    return sum(-(-(t["col1"] - t["col0"]) // m) for t in st["tiles"])


def test_layers_with_slack_take_the_share_that_leaves_the_fewest_adcs(cnn):
    pdk = load_pdk("generic")
    shares = adc_balance(cnn, 4, 4, pdk, 8, 32)
    layers = {st["name"]: m for st, m in zip(cnn["steps"], shares) if st["kind"] == "layer"}
    # conv1 and conv2 set the interval (their stages are 482 and 488 clocks); fc's stage reads once an
    # input and its tiles have 10 outputs each: one ADC at 16 outputs (32 would leave as many, later)
    assert layers == {"conv1": 8, "conv2": 8, "fc": 16}
    assert _interval(cnn, pdk, shares, 4) == _interval(cnn, pdk, [8] * len(shares), 4) == 488
    # no layer could take a share with fewer ADCs without lengthening the interval
    for k, st in enumerate(cnn["steps"]):
        if st["kind"] != "layer":
            continue
        for m in (16, 32):
            if _adcs(st, m) < _adcs(st, shares[k]):
                trial = shares[:k] + [m] + shares[k + 1:]
                assert _interval(cnn, pdk, trial, 4) > 488, (st["name"], m)


def test_an_adc_may_serve_several_tiles_of_a_layer_with_slack(cnn):
    # fc's four tiles (10 outputs each) read together once an input: one ADC of 40 channels converts
    # them all within the interval, where each tile's own ADC left four
    pdk = load_pdk("generic")
    shares = adc_balance(cnn, 4, 4, pdk, 8, 32, MAX_ADC_CHANNELS)
    layers = {st["name"]: (m, layer_adcs(st, m, 32), adc_tiles(st, m, 32))
              for st, m in zip(cnn["steps"], shares) if st["kind"] == "layer"}
    assert layers == {"conv1": (8, 4, 1), "conv2": (8, 4, 1), "fc": (40, 1, 4)}
    assert _interval(cnn, pdk, shares, 4) == 488
    # not beyond the cap: at 32 channels an ADC none of fc's multiples (40) is offered
    assert adc_balance(cnn, 4, 4, pdk, 8, 32, 32) == adc_balance(cnn, 4, 4, pdk, 8, 32)
    # a share at most a tile's outputs stays the tile's own ADCs; above, tiles g at a time
    fc = next(st for st in cnn["steps"] if st.get("name") == "fc")
    assert [layer_adcs(fc, m, 32) for m in (8, 16, 20, 30, 40)] == [8, 4, 4, 4, 1]
    assert [adc_tiles(fc, m, 32) for m in (16, 32, 40)] == [1, 1, 4]


def test_one_stage_has_no_slack(cnn):
    # every conversion adds to the one stage's clocks: nothing changes
    assert set(adc_balance(cnn, 4, 1, load_pdk("generic"), 8, 32)) == {8}


def test_a_pdk_without_a_shared_readout_refuses_it():
    pdk = dataclasses.replace(load_pdk("generic"), readout=None)
    with pytest.raises(InputError, match="--adc-balance.*no shared-ADC readout.*expected off"):
        check_tile_options(CompileOptions(adc_balance="on", adc_share=1), pdk)
    for opts in (CompileOptions(adc_balance="off"), CompileOptions()):   # the default is off there
        assert check_tile_options(opts, pdk) == 1 and not adc_balance_of(opts, pdk)
    assert adc_balance_of(CompileOptions(), load_pdk("generic"))


def test_explore_grids_take_it_and_refuse_other_values():
    parser, flags = _grid_parser()
    grid = [("adc-balance", ["off", "on"])]
    for v in ("off", "on"):
        got = _grid_point_options("m.onnx", grid, {"adc-balance": v}, parser, flags)
        assert got["compile"]["adc_balance"] == v
    with pytest.raises(InputError, match="adc-balance=maybe"):
        _grid_point_options("m.onnx", [("adc-balance", ["maybe"])], {"adc-balance": "maybe"}, parser, flags)
