"""Each layer's outputs per ADC from its pipeline stage's slack (compile --adc-balance on,
backend/verilog.adc_balance), and its bad input. Simulated end to end in tests/sim/test_readout.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.backend.verilog import adc_balance, layer_adcs, macro_latency, rtl_cycles, step_lanes
from compiler.cli import _grid_parser, _grid_point_options
from compiler.errors import InputError
from compiler.options import CompileOptions
from compiler.passes.tile import MAX_ADC_CHANNELS, adc_balance_of, check_tile_options
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
    chosen = adc_balance(cnn, 4, 4, pdk, 8, 32)
    shares = [m for m, _ in chosen]
    layers = {st["name"]: c for st, c in zip(cnn["steps"], chosen) if st["kind"] == "layer"}
    # conv1 and conv2 set the interval (their stages are 451 and 457 clocks); fc's stage reads once an
    # input and its tiles have 10 outputs each: one ADC at 16 outputs (32 would leave as many, later);
    # without ADCs across tiles each tile keeps its own
    assert layers == {"conv1": (8, 1), "conv2": (8, 1), "fc": (16, 1)}
    assert _interval(cnn, pdk, shares, 4) == _interval(cnn, pdk, [8] * len(shares), 4) == 457
    # no layer could take a share with fewer ADCs without lengthening the interval
    for k, st in enumerate(cnn["steps"]):
        if st["kind"] != "layer":
            continue
        for m in (16, 32):
            if _adcs(st, m) < _adcs(st, shares[k]):
                trial = shares[:k] + [m] + shares[k + 1:]
                assert _interval(cnn, pdk, trial, 4) > 457, (st["name"], m)


def test_an_adc_may_serve_several_tiles_of_a_layer_with_slack(cnn):
    # fc's four tiles (10 outputs each) read together once an input: one ADC of 40 channels converts
    # them all within the interval, where each tile's own ADC left four
    pdk = load_pdk("generic")
    chosen = adc_balance(cnn, 4, 4, pdk, 8, 32, MAX_ADC_CHANNELS)
    layers = {st["name"]: (*c, layer_adcs(st, *c)) for st, c in zip(cnn["steps"], chosen) if st["kind"] == "layer"}
    assert layers == {"conv1": (8, 1, 4), "conv2": (8, 1, 4), "fc": (40, 4, 1)}
    assert _interval(cnn, pdk, [m for m, _ in chosen], 4) == 457
    # at most 32 channels an ADC: two tiles an ADC, two ADCs (three tiles would leave as many)
    assert dict(zip([st.get("name") for st in cnn["steps"]], adc_balance(cnn, 4, 4, pdk, 8, 32, 32)))["fc"] == (20, 2)
    # each tile's own ADCs at a share, or a tile group's one
    fc = next(st for st in cnn["steps"] if st.get("name") == "fc")
    assert [layer_adcs(fc, m) for m in (8, 16, 32)] == [8, 4, 4]
    assert [layer_adcs(fc, 10 * g, g) for g in (2, 3, 4)] == [2, 2, 1]
    # no layer could take a choice with fewer ADCs without lengthening the interval
    for k, st in enumerate(cnn["steps"]):
        if st["kind"] == "layer":
            for g in range(2, len(st["tiles"]) + 1):
                m = g * max(t["col1"] - t["col0"] for t in st["tiles"])
                if m <= MAX_ADC_CHANNELS and layer_adcs(st, m, g) < layer_adcs(st, *chosen[k]):
                    trial = [c[0] for c in chosen[:k]] + [m] + [c[0] for c in chosen[k + 1:]]
                    assert _interval(cnn, pdk, trial, 4) > 457, (st["name"], m, g)


def test_one_stage_has_no_slack(cnn):
    # every conversion adds to the one stage's clocks: nothing changes
    assert set(adc_balance(cnn, 4, 1, load_pdk("generic"), 8, 32, MAX_ADC_CHANNELS)) == {(8, 1)}


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


def test_adc_groups_take_a_layers_tiles_g_at_a_time_the_last_group_partial():
    # fc's four tiles three an ADC (30 channels): tiles r0..r2 on one readout, r3 alone on a second,
    # its channels beyond its 10 outputs ground; no tile of fc keeps a readout of its own
    import re

    from compiler.backend.render import environment
    from compiler.backend.spice import emit_spice
    from compiler.frontend import load_model
    from compiler.passes.pipeline import run_pipeline
    from compiler.passes.tile import adc_groups

    pdk = load_pdk("generic")
    ir, _ = load_model(CNN)
    low = run_pipeline(ir, CompileOptions(), pdk)
    low.g.graph.update(adc_shares={"fc": 30}, adc_tiles={"fc": 3})
    assert adc_groups(low) == {"fc_r0c0": ("fc_adc0", 0), "fc_r1c0": ("fc_adc0", 1), "fc_r2c0": ("fc_adc0", 2),
                               "fc_r3c0": ("fc_adc1", 0)}
    chip = dict(emit_spice(low, pdk, environment(pdk), "0" * 64))["spice/chip.sp"]

    def nets(inst):
        (lines,) = re.findall(rf"^{inst}\n((?:\+ .*\n)+)", chip, re.M)
        return " ".join(ln[2:] for ln in lines.splitlines()).split()

    a, b = nets("Xfc_adc0_ro"), nets("Xfc_adc1_ro")
    assert a[:30] == [f"fc_r{q}c0_out_{j}" for q in range(3) for j in range(10)]
    assert b[:30] == [f"fc_r3c0_out_{j}" for j in range(10)] + ["0"] * 20
    assert a[-3:] == ["fc_adc0_adp", "fc_adc0_adn", "amsc_ro30"] and b[-3:] == ["fc_adc1_adp", "fc_adc1_adn", "amsc_ro30"]
    assert not re.search(r"^Xfc_r\dc0_ro\d", chip, re.M) and re.search(r"^Xconv2_r0c0_ro0$", chip, re.M)
    assert ".include readout30.sp" in chip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 128), min_size=1, max_size=12), min_size=1, max_size=6),
       st.sampled_from([32, 64, 128]))
def test_a_stage_pool_gives_every_slot_one_adc_never_two_of_a_layer(slots, cap):
    from compiler.passes.tile import pool_slots

    slots = [[min(c, cap) for c in ss] for ss in slots]
    adcs = pool_slots(slots, cap)
    placed = sorted(lk for a in adcs for lk in a)
    assert placed == sorted((l, k) for l, ss in enumerate(slots) for k in range(len(ss)))   # each slot once
    for a in adcs:
        assert a and len({l for l, _ in a}) == len(a)           # a layer's slots convert at once
        assert sum(slots[l][k] for l, k in a) <= cap
    # at least the layer with the most slots and the channels' share of the cap; exactly as many as
    # that layer's slots when one slot of every layer fits one ADC
    assert len(adcs) >= max(max(len(ss) for ss in slots), -(-sum(map(sum, slots)) // cap))
    if sum(max(ss) for ss in slots) <= cap:
        assert len(adcs) == max(len(ss) for ss in slots)


def test_the_layers_of_one_stage_share_a_pool_of_adcs_in_the_netlists():
    # cnn_digits as one stage: conv1's tile (32 outputs), conv2's two (16) and fc's four (10) at 8
    # outputs an ADC have 4, 4 and 8 slots; the pool has 8 ADCs: 4 of conv1 + conv2 + fc's first 8
    # outputs of a tile (24 channels, the readout of 32), 4 of fc's last 2 (2 channels)
    import re

    from compiler.backend.render import environment
    from compiler.backend.spice import emit_spice, readout_circuits
    from compiler.frontend import load_model
    from compiler.passes.pipeline import run_pipeline
    from compiler.passes.tile import adc_pool_of, adc_pools

    pdk = load_pdk("generic")
    ir, _ = load_model(CNN)
    low = run_pipeline(ir, CompileOptions(), pdk)
    low.g.graph["adc_stages"] = {"stage0": ["conv1", "conv2", "fc"]}
    pools = adc_pools(low)
    assert list(pools) == [f"stage0_adc{k}" for k in range(8)] and set(adc_pool_of(low).values()) == {"stage0"}
    # no tile keeps its ADCs at the design's 8 outputs: no readout of 8 is built
    assert [len(ch) for ch in pools.values()] == [32] * 4 + [2] * 4 and readout_circuits(low) == (1, [2, 32])
    outs = sorted(ch for chs in pools.values() for ch in chs if ch)
    assert outs == sorted((t, j) for t, n in [("conv1_r0c0", 32), ("conv2_r0c0", 16), ("conv2_r1c0", 16)]
                          + [(f"fc_r{r}c0", 10) for r in range(4)] for j in range(n))
    for chs in pools.values():   # one slot of a layer an ADC: each layer's channels in one run
        layers = [low.g.nodes[t]["attrs"]["layer"] for t, _ in filter(None, chs)]
        runs = [x for k, x in enumerate(layers) if k == 0 or x != layers[k - 1]]
        assert len(runs) == len(set(runs))
    files = dict(emit_spice(low, pdk, environment(pdk), "0" * 64))
    chip = files["spice/chip.sp"]
    assert "spice/readout.sp" not in files and ".include readout.sp" not in chip and "amsc_ro8" not in chip
    (lines,) = re.findall(r"^Xstage0_adc0_ro\n((?:\+ .*\n)+)", chip, re.M)
    nets = " ".join(ln[2:] for ln in lines.splitlines()).split()
    assert nets[:32] == [f"conv1_r0c0_out_{j}" for j in range(8)] + [f"conv2_r0c0_out_{j}" for j in range(8)] \
        + [f"fc_r0c0_out_{j}" for j in range(8)] + ["0"] * 8
    assert nets[-3:] == ["stage0_adc0_adp", "stage0_adc0_adn", "amsc_ro32"]
    assert not re.search(r"^X\w+_r\dc0_ro\d+$", chip, re.M)     # no tile keeps a readout of its own
    assert ".include readout32.sp" in chip and ".include readout2.sp" in chip


def test_a_pooled_layer_is_priced_at_its_share_without_a_circuit_of_its_own():
    # a layer at 48 outputs an ADC whose slots are on its stage's pool (readouts of 32 and 64): the
    # report prices its outputs' sample-and-holds and its ADCs' reset switches at 48 all the same
    from compiler.backend.readout import entries, manifest_entry
    from compiler.eval.ppa import _readout_of, readout_cost

    pdk = load_pdk("generic")
    ro = manifest_entry(pdk, 8, 1.0, 8, [32, 64], {"stage0": 3})
    assert ro["pools"] == {"stage0": 3} and _readout_of(ro, 32)["share"] == 32
    e = _readout_of(ro, 48)
    assert e["share"] == 48 and e["circuit"] == ro["circuit"] == dict(pdk.readout)
    c = pdk.readout
    area, energy = readout_cost(e, 96)
    assert area == pytest.approx(96 * (2 * c["hold_cap_f"] / c["cap_f_per_um2"] + 4 * c["switch_area_um2"])
                                 + 2 * 2 * c["switch_area_um2"])
    assert energy > 0 and _readout_of(ro, 1) == {"share": 1}
    # every tile pooled: no readout of the design's 8 is built, its share still recorded
    bare = manifest_entry(pdk, 8, 1.0, 1, [32, 64], {"stage0": 3})
    assert bare["share"] == 8 and "subckt" not in bare and [x["share"] for x in entries(bare)] == [32, 64]
    e2 = _readout_of(bare, 48)
    assert e2["share"] == 48 and e2["circuit"] == dict(pdk.readout) and readout_cost(e2, 96) == (area, energy)


def test_a_pool_adc_of_one_output_is_a_readout_of_two():
    # fc at 9 outputs an ADC leaves a slot of 1 output a tile; pooled with conv1 (8 an ADC), first
    # fit puts conv1's slots beside fc's 9s and each 1 alone: a readout of 2, one channel on ground
    from compiler.backend.render import environment
    from compiler.backend.spice import emit_spice, readout_circuits
    from compiler.frontend import load_model
    from compiler.passes.pipeline import run_pipeline
    from compiler.passes.tile import adc_pools

    pdk = load_pdk("generic")
    ir, _ = load_model(CNN)
    low = run_pipeline(ir, CompileOptions(), pdk)
    low.g.graph.update(adc_shares={"conv1": 8, "conv2": 8, "fc": 9}, adc_stages={"stage0": ["conv1", "fc"]})
    sizes = sorted(len(ch) for ch in adc_pools(low).values())
    # conv2 (not in the stage) keeps its ADCs at the design's 8 outputs: its readout of 8
    assert sizes == [2] * 4 + [32] * 4 and readout_circuits(low) == (8, [2, 32])
    chip = dict(emit_spice(low, pdk, environment(pdk), "0" * 64))["spice/chip.sp"]
    assert "amsc_ro1\n" not in chip and chip.count("+ amsc_ro2\n") == 4
