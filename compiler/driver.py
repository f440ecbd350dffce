"""compile: model file -> IR -> passes -> back ends -> OutputWriter (streamed, atomic rename)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from typing import Callable

from . import __version__
from .design.folder import array_file
from .design.writer import OutputWriter, check_output_dir, sha256
from .backend.qmodel import RtlUnsupported, build_program, program_json
from .passes.calibrate import nominal_ir
from .passes.compensate_ir import compensate_ir
from .backend.floorplan import placement_images, placement_json
from .backend.render import environment
from .backend.readout import manifest_entry as readout_entry
from .backend.spice import emit_spice, readout_circuits, tia_context
from .backend import verilog
from .backend.verilog import (bipolar_tiles, chain_order, emit_verilog, requant_regs, scan_bits, scan_mem_text,
                              sim_scan_bits)
from .frontend import load_model
from .frontend.common import load_samples
from .ir import IR
from .ir.graph import MATMUL_OPS
from .ir.verify import verify_ir
from .ir.segment import segment_model
from .ir.serialize import ir_to_json
from .options import DEFAULT_PIPELINE, CompileOptions, lanes_of, route_banks_of
from .passes.pipeline import run_pipeline
from .passes.tile import MAX_ADC_CHANNELS, adc_groups, adc_pool_of, adc_pools, stage_pools, tile_adc_share, tile_shape
from .errors import InputError, PdkError, UnsupportedOpError
from .pdk import Pdk, load_pdk
from .pdk.devices import transistor_table


def _pool_stages(ir, prog: dict, cuts: list[tuple[int, int]]):
    """Record, under ``--adc-balance on``, the layers of each pipeline stage (the whole chip when it
    takes one input at a time) that share its ADCs: the stage runs its steps one after another, so
    while one layer reads the others' ADCs would idle (passes/tile.adc_pools). A stage of one layer
    with shared ADCs keeps its own."""
    stages = {}
    for s, (a, b) in enumerate(cuts):
        first = [st["tiles"][0]["name"] for st in prog["steps"][a:b] if st["kind"] == "layer"]   # a tile a layer
        layers = list(dict.fromkeys(ir.g.nodes[t]["attrs"]["layer"] for t in first if tile_adc_share(ir, t) > 1))
        if len(layers) >= 2:
            stages[f"stage{s}"] = layers
    if not stages:
        return ir
    ir = ir.copy()
    ir.g.graph["adc_stages"] = stages
    return ir


def pdk_summary(pdk: Pdk) -> dict:
    return {
        "name": pdk.name, "g_min": pdk.g_min, "g_max": pdk.g_max, "levels": pdk.levels,
        "v_read": pdk.v_read, "adc_bits": pdk.adc_bits, "dac_bits": pdk.dac_bits,
        "tia_v_out_fs": pdk.tia_v_out_fs, "cell": pdk.cell["type"], "tia": pdk.tia["type"],
        "r_wl_segment": pdk.r_wl_segment, "r_bl_segment": pdk.r_bl_segment, "reltol": pdk.reltol, "abstol": pdk.abstol,
    }


def _used_cells(t: dict) -> int:
    blocks = t.get("blocks") or [[t["rows"][0], t["rows"][1], t["cols"][0], t["cols"][1]]]
    return sum((r1 - r0) * 2 * (c1 - c0) for r0, r1, c0, c1 in blocks)


def utilization(tiles: list[dict]) -> dict:
    """Programmed cells over available cells (a signed weight uses two cells; the G_min cells between
    the blocks of a packed grouped tile count as unused)."""
    used = sum(_used_cells(t) for t in tiles)
    avail = sum(t["tile_size"][0] * t["tile_size"][1] for t in tiles)
    return {"used_cells": used, "available_cells": avail, "ratio": used / avail if avail else 0.0}


def apply_overrides(pdk: Pdk, options: CompileOptions) -> Pdk:
    """The PDK with the CLI's overrides (weight, ADC and DAC bits, wire resistance) applied."""
    changes = {}
    if options.weight_bits is not None:
        changes["levels"] = 2 ** options.weight_bits
    if options.adc_bits is not None:
        changes["adc_bits"] = options.adc_bits
    if options.dac_bits is not None:
        changes["dac_bits"] = options.dac_bits
    if options.wire_r is not None:
        changes["r_wl_segment"] = changes["r_bl_segment"] = options.wire_r
    return dataclasses.replace(pdk, **changes) if changes else pdk


#: Multiply-accumulates the default (random) calibration may spend: 64 samples of a small model,
#: fewer of a large one (ResNet-50, 4.1 GMAC per image: 15), never fewer than CALIB_MIN.
CALIB_MACS = 64e9
CALIB_MAX, CALIB_MIN = 64, 8
CALIB_BYTES = 256 * 1024 * 1024


def macs_per_sample(ir: IR) -> int:
    """Multiply-accumulates of one sample through the dense and conv layers."""
    total = 0
    for n in ir.g.nodes:
        d = ir.g.nodes[n]
        if d["op"] in MATMUL_OPS:
            positions = int(np.prod(d["shape"][1:])) if d["op"] == "conv" else int(np.prod(d["shape"][:-1]))
            total += round(int(d["params"]["W"].size) * positions * d["attrs"].get("mac_fraction", 1.0))
    return total


def calibration_inputs(ir: IR, options: CompileOptions, model: Path) -> tuple[np.ndarray, str, Path | None]:
    """Inputs that set the activation ranges of the datapath: --calibration, else calib.npy next to
    the model, else seeded uniform samples of the input range: CALIB_MACS / (MACs per sample) of
    them, between CALIB_MIN and CALIB_MAX. Returns (inputs, description, the file or None)."""
    inp = ir.nodes_of("input")[0]
    shape = tuple(ir.g.nodes[inp]["shape"])
    path = Path(options.calibration) if options.calibration else model.parent / "calib.npy"
    if options.calibration or path.is_file():
        return load_samples(path, shape, "calibration inputs"), path.name, path
    n = int(np.clip(round(CALIB_MACS / max(1, macs_per_sample(ir))), CALIB_MIN, CALIB_MAX))
    n = max(1, min(n, CALIB_BYTES // (8 * int(np.prod(shape)))))   # and at most CALIB_BYTES of inputs
    rng = np.random.default_rng(options.seed)
    lo, hi = options.input_range
    return rng.uniform(lo, hi, size=(n, *shape)), f"uniform random ({n} samples)", None


def partition_manifest(ir: IR) -> dict:
    """Where every node runs (crossbar | digital | host) and the segments in execution order."""
    part = ir.g.graph["partition"]
    seg_of = {n: seg["name"] for seg in part["segments"] for n in seg["nodes"]}
    def why(n: str, h: str) -> dict:
        d = ir.g.nodes[n]
        if d["op"] == "host":
            return {"onnx_op": d["attrs"]["op_type"], "reason": d["attrs"]["reason"]}
        if h == "host" and d["op"] != "softmax":
            return {"reason": "digital op between host nodes: runs with them (no stream out and back)"}
        return {}

    nodes = [{"name": n, "origin": ir.g.nodes[n]["origin"], "op": ir.g.nodes[n]["op"], "home": h,
              "segment": seg_of[n], **why(n, h)} for n, h in sorted(part["homes"].items())]
    segments = [{k: seg[k] for k in ("name", "kind", "inputs", "outputs", "macs_crossbar", "macs_host", "file")
                 if k in seg} | {"nodes": len(seg["nodes"]),
                                 "homes": {h: sum(part["homes"][n] == h for n in seg["nodes"])
                                           for h in ("crossbar", "digital", "host")}}
                for seg in part["segments"]]
    return {"order": [s["name"] for s in segments], "segments": segments, "nodes": nodes}


def _map_memories(prog: dict, per, cuts, pdk: Pdk, options: CompileOptions) -> dict:
    """The maps held in SRAM macros (verilog.map_memories) under ``--map-memory``; a PDK without the
    macro's templates or figures has none (an error when ``sram`` asks for them)."""
    able = {"sram_macro", "sram_macro_sim"} <= set(pdk.templates) and pdk.ppa is not None
    sram = pdk.ppa.get("sram") if able else None
    try:
        return verilog.map_memories(prog, per, cuts, sram, options.map_memory,
                                    pdk.ppa["digital"]["clock_mhz"] if pdk.ppa else 0.0)
    except ValueError as e:
        raise InputError("--map-memory", f"sram: {e}") from None


def manifest_options(options: CompileOptions, ir: IR, pdk: Pdk, stages: int | None) -> dict:
    """The compile options as the manifest keeps them: with every default the compiler or the PDK
    chose spelled out (the tile, the outputs per ADC and their balance, the lanes, ``stages``: the
    pipeline's stages at most that the RTL was built with, None where no RTL was), so that what
    reads the design later (``amsc program``'s recompile, the Monte Carlo's placement banks in
    ``amsc evaluate``) builds the chip it was compiled as, whatever a later version's defaults."""
    d = options.to_json()
    d["tile_rows"], d["tile_cols"] = tile_shape(options, pdk)
    d["lanes"] = lanes_of(options)
    if stages is not None:
        d["pipeline"] = stages
    if "adc_share" in ir.g.graph:           # set by the tile pass (passes/tile.py)
        d["adc_share"] = ir.g.graph["adc_share"]
        d["adc_balance"] = "on" if ir.g.graph["adc_balance"] else "off"
    return d


def write_design(plan: OutputWriter, ir: IR, pdk: Pdk, options: CompileOptions, source_name: str, source_sha: str,
                 calib: tuple[np.ndarray, str], source_file: Path | None = None,
                 progress: Callable[[str, int, int], None] | None = None, external: list[str] = ()) -> dict:
    """Write every file of the compiled design into ``plan`` as it is produced; returns the manifest.
    ``progress(phase, done, total)`` hears how far each long phase is; ``external`` names the source's
    external data files (relative to its folder), copied beside it so that the copy runs as it is."""
    progress = progress or (lambda *a: None)
    env = environment(pdk)
    n_tiles = len(ir.nodes_of("xbar_tile"))
    progress("calibration and integer program", 0, 1)
    lanes, cuts, stages = lanes_of(options), None, None
    per: int | list[int] = lanes     # every step's lanes once the program is built
    try:
        prog = build_program(ir, pdk, options, calib[0], nominal_ir(ir, pdk))
        latency = verilog.macro_latency(pdk, ir.g.graph.get("adc_share", 1))
        # --lanes at most: a step gets fewer where they would not pay (step_lanes)
        per = verilog.step_lanes(prog, lanes, latency)
        stages = DEFAULT_PIPELINE if options.pipeline is None else options.pipeline
        try:
            cycles = verilog.rtl_cycles(prog, per, latency, stages)
        except ValueError as e:
            if options.pipeline is not None:
                raise InputError("--pipeline", str(e)) from None
            # the default on a chip with host segments between its segments: one input at a time
            stages = 1
            cycles = verilog.rtl_cycles(prog, per, latency, stages)
        if ir.g.graph.get("adc_balance") and "stages" in cycles:
            # a layer whose stage has slack shares its ADCs among more outputs (verilog.adc_balance)
            ir = ir.copy()
            outputs = tile_shape(options, pdk)[1] // 2
            # an ADC may serve several tiles of a layer (up to MAX_ADC_CHANNELS outputs), not
            # where spare columns make a tile's outputs differ from its layer's slice
            chosen = verilog.adc_balance(prog, lanes, len(cycles["stages"]), pdk, ir.g.graph["adc_share"],
                                         outputs, 0 if options.spare_cols else MAX_ADC_CHANNELS)
            shares = [m for m, _ in chosen]
            layer_of = {k: ir.g.nodes[st["tiles"][0]["name"]]["attrs"]["layer"]
                        for k, st in enumerate(prog["steps"]) if st["kind"] == "layer"}
            ir.g.graph["adc_shares"] = {layer_of[k]: shares[k] for k in layer_of}
            # the layers whose ADCs each serve several tiles (passes/tile.adc_groups)
            ir.g.graph["adc_tiles"] = {layer_of[k]: chosen[k][1] for k in layer_of if chosen[k][1] > 1}
            latency = [verilog.macro_latency(pdk, m) for m in shares]
            per = verilog.step_lanes(prog, lanes, latency)
            cycles = verilog.rtl_cycles(prog, per, latency, len(cycles["stages"]))
        if "stages" in cycles:     # the split the count was made for is the one the RTL is written for
            cuts = [tuple(x["steps"]) for x in cycles["stages"]]
        if ir.g.graph.get("adc_balance"):
            ir = _pool_stages(ir, prog, cuts or [(0, len(prog["steps"]))])
        srams = _map_memories(prog, per, cuts, pdk, options)
        datapath = {"generated": True, "calibration": calib[1], "output_scale": prog["output_scale"],
                    "lanes": lanes, "step_lanes": per, "pipeline": len(cycles.get("stages", [0])),
                    # clocks of one input through the chip top (backend/verilog.rtl_cycles; rtl-sim measures it)
                    "cycles_per_input": cycles,
                    "streams": {d: sum(st["kind"] == k for st in prog["steps"]) for d, k in (("in", "recv"),
                                                                                         ("out", "send"))},
                    # the maps whose parts are SRAM macros (backend/verilog.map_memories; the report counts them)
                    "map_memory": options.map_memory, "srams": srams}
    except RtlUnsupported as e:
        prog, datapath = None, {"generated": False, "reason": str(e)}
    # a 1T1R PDK's access transistor, calibrated once: the golden model of every cell (and the
    # IR-drop compensation of a 1T1R tile) solves against it
    table = transistor_table(pdk, options.corner) if pdk.cell["type"] == "1t1r" else None
    if options.compensate_ir:
        # after the program: whether a tile's inputs are signed (bipolar DACs) sets how it is compensated
        progress("IR-drop compensation", 0, 1)
        ir = compensate_ir(ir, options, pdk, bipolar_tiles(prog), table)
    for k, (rel, text) in enumerate(emit_spice(ir, pdk, env, source_sha, options.corner, options.seed)):
        plan.add(rel, text)
        if k % 64 == 0:
            progress("SPICE netlists", k // 2, n_tiles)
    banked = route_banks_of(options) > 1
    srams = datapath.get("srams") if datapath.get("generated") else None
    for k, (rel, text) in enumerate(emit_verilog(ir, pdk, env, source_sha, prog, per, cuts, banked, srams)):
        plan.add(rel, text)
        if k % 64 == 0:
            progress("Verilog", k // 2, n_tiles)
    bipolar = bipolar_tiles(prog)
    if prog is not None:
        plan.add("rtl/program.json", program_json(prog))
        order = chain_order(ir)
        datapath["scan_order"] = order
        datapath["requant_scan"] = requant_regs(prog)
        n_bits, limit = sim_scan_bits(prog), verilog.SIM_MAX_SCAN_BITS
        if n_bits <= limit:
            plan.add_chunks("rtl/sim/scan.mem", (scan_mem_text(b) for b in scan_bits(prog, order)))
            datapath["rtl_sim"] = {"generated": True, "scan_bits": n_bits}
        else:
            datapath["rtl_sim"] = {"generated": False, "scan_bits": n_bits,
                                   "reason": f"{n_bits} scan-chain bits are more than the {limit} an "
                                             "Icarus simulation of every cell level can hold; the synthesizable RTL "
                                             "and the integer model ('amsc run') are written"}
    cell = {"type": "1r"}
    if pdk.cell["type"] == "1t1r":
        cell = {"type": "1t1r", "rram": pdk.cell["rram"], "v_gate": pdk.cell["v_gate"], "corner": options.corner,
                "transistor": pdk.cell["transistor"], "table": {}}
        for key in ("vds", "vgs", "ids"):
            cell["table"][key] = f"pdk/transistor_{key}.npy"
            plan.add_npy(cell["table"][key], table[key])
    partition = partition_manifest(ir)
    for seg in ir.g.graph["partition"]["segments"]:
        if seg["kind"] == "host":
            model, _ = segment_model(ir, seg)
            plan.add(seg["file"], model.SerializeToString(deterministic=True))
    plan.add("ir.json", ir_to_json(ir))
    if source_file is not None:
        plan.add_file(f"source/{source_name}", source_file)
        for rel in external:
            plan.add_file(f"source/{rel}", source_file.parent / rel)
    if calib[2] is not None:   # with the source, what recompiles it the same way ('amsc evaluate --sweep')
        plan.add_file("source/calib.npy", calib[2])
    # the parameters of the digital nodes (tiles and accumulators have theirs under tiles/ and
    # layers/): with ir.json they make the compiled design runnable on its own ('amsc run')
    for n in ir.topo():
        d = ir.g.nodes[n]
        if d["op"] not in ("xbar_tile", "accum"):
            for key, arr in sorted(d["params"].items()):
                plan.add_npy(array_file(n, d["op"], key), arr)
    progress("placement picture", 0, 1)
    plan.add("placement.json", placement_json(ir))
    png, svg = placement_images(ir)
    plan.add("placement.png", png)
    plan.add("placement.svg", svg)
    tiles = []
    groups = {t: g for t, (g, _) in adc_groups(ir).items()}
    pools = adc_pool_of(ir)
    stage_adcs = stage_pools(ir)     # each pipeline stage's shared ADCs: their readouts and count
    for k, t in enumerate(ir.nodes_of("xbar_tile")):
        if k % 256 == 0:
            progress("conductance arrays", k, n_tiles)
        d = ir.g.nodes[t]
        a, p = d["attrs"], d["params"]
        arrays = {}
        for key in sorted(p):    # the conductances and levels, and a compensated tile's programmed ones and trims
            rel = array_file(t, "xbar_tile", key)
            plan.add_npy(rel, p[key])
            arrays[key] = rel
        tiles.append({
            "name": t, "layer": a["layer"], "rows": [a["row0"], a["row1"]], "cols": [a["col0"], a["col1"]],
            "split": a["split"], "grid": a["grid"], "step": a["step"], "tile_size": [a["tile_rows"], a["tile_cols"]],
            "adc_share": tile_adc_share(ir, t),
            # the ADCs it shares with other tiles of its layer (passes/tile.adc_groups)
            **({"adc_group": groups[t]} if t in groups else {}),
            # the stage whose layers share their ADCs, as they read one after another (passes/tile.adc_pools)
            **({"adc_pool": pools[t]} if t in pools else {}),
            "subckt": f"xbar_{t}", "subckt_file": f"spice/tiles/{t}.sp", "testbench": f"spice/tb/{t}_tb.sp",
            "conductances": arrays, "adc_full_scale_a": a["adc_full_scale_a"],
            "adc_lsb_a": 2.0 * a["adc_full_scale_a"] / 2 ** pdk.adc_bits, "rf_ohm": a["rf_ohm"],
            "v_read": pdk.v_read, "dac_bits": pdk.dac_bits, "adc_bits": pdk.adc_bits,
            "parasitics": a["parasitics"], "cell": cell, **({"blocks": a["blocks"]} if "blocks" in a else {}),
            **({"compensation": a["compensation"]} if "compensation" in a else {}),
            **({"spares": {"rows": a["spares"][0], "cols": a["spares"][1]}} if "spares" in a else {}),
            # compiled for one chip: the physical word line of each row and bit-line pair of each column
            **({"placement": a["placement"], "faults": a["faults"]} if "placement" in a else {}),
            # bipolar: the tile's word lines are driven to either sign (its layer reads signed codes)
            "bipolar": t in bipolar,
            "tia": {**pdk.tia, "transimpedance_ohm": tia_context(a["rf_ohm"], pdk)["transimpedance"]},
        })
    layers = []
    by_layer = {}
    for t in tiles:
        by_layer.setdefault(t["layer"], []).append(t)
    for n in ir.nodes_of("accum"):
        d = ir.g.nodes[n]
        a = d["attrs"]
        arrays = {}
        # w_scale and the bias; a recurrent layer's recurrent-side bias bh and initial state h0 (c0) too
        for pkey in sorted(d["params"]):
            key = "bias" if pkey == "b" else pkey
            arrays[key] = array_file(n, "accum", pkey)
            plan.add_npy(arrays[key], d["params"][pkey])
        layers.append({"name": n, "kind": a["kind"], "activation": a["activation"], "spatial": a["spatial"],
                       **({"recurrent": a["recurrent"]} if "recurrent" in a else {}),
                       "weight_scale": a["weight_scale"], "arrays": arrays, "row_splits": a["row_splits"],
                       "col_splits": a["col_splits"], "acc_bits": a["acc_bits"], "tiles": ir.inputs(n),
                       "utilization": utilization(by_layer[n])})
    chip = chip_manifest(plan, ir, options, tiles) if "chip_state" in ir.g.graph else None
    manifest = {
        "amsc_version": __version__,
        "design": ir.name,
        "source": {"name": source_name, "sha256": source_sha,
                   **({"file": f"source/{source_name}"} if source_file is not None else {}),
                   **({"external_data": [f"source/{rel}" for rel in external]} if external else {}),
                   **({"calibration": "source/calib.npy"} if calib[2] is not None else {})},
        "options": manifest_options(options, ir, pdk, stages if datapath.get("generated") else None),
        "pdk": pdk_summary(pdk),
        "files": [{"path": k, "sha256": v} for k, v in plan.digests().items()],
        "tiles": tiles,
        "layers": layers,
        "utilization": utilization(tiles),
        "placement": {k: ir.g.graph["floorplan"][k] for k in ("grid", "wirelength", "baseline_wirelength", "seed")},
        "rtl_datapath": datapath,
        # outputs per ADC, and with a shared ADC its readout circuit (backend/readout.py)
        # (and those of the other shares its layers take under --adc-balance on, with the ADCs each
        # stage's pool of them has: passes/tile.adc_pools)
        "readout": readout_entry(pdk, ir.g.graph.get("adc_share", 1), pdk.tia_v_out_fs,
                                 *readout_circuits(ir, adc_pools(ir, stage_adcs)),
                                 {s: len(adcs) for s, adcs in stage_adcs.items()}),
        "partition": partition,
        # the PDK's area, energy and timing figures as compiled ('amsc report' reads them from here)
        **({"ppa": pdk.ppa} if pdk.ppa is not None else {}),
        # the device non-idealities Monte Carlo draws from ('amsc evaluate --mc')
        **({"variation": pdk.variation} if pdk.variation is not None else {}),
    }
    if chip is not None:
        manifest["chip"] = chip
    return manifest


def chip_manifest(plan: OutputWriter, ir: IR, options: CompileOptions, tiles: list[dict]) -> dict:
    """The ``chip`` section of a design compiled for one chip: its state (copied into the design),
    where it came from, and what the placement achieved."""
    cs = ir.g.graph["chip_state"]
    plan.add_file("chip/state.npz", Path(options.chip_state))
    faults = [t["faults"] for t in tiles]
    params = [ir.g.nodes[n]["params"] for n in ir.nodes_of("accum") if "cal_gain" in ir.g.nodes[n]["params"]]
    # a recurrent layer's recurrent side is calibrated on its own: its columns count again
    gains = [p[k] for p in params for k in ("cal_gain", "cal_gain_h") if k in p]
    cal = {"layers": len(params), "columns": int(sum(g.size for g in gains)),
           "gain_min": float(min(g.min() for g in gains)) if gains else 1.0,
           "gain_max": float(max(g.max() for g in gains)) if gains else 1.0,
           "model": "per output column, least squares over the calibration read set, in the requantizer's MQ/BQ "
                    "(passes/calibrate.py); layers' cal_gain / cal_offset arrays (a recurrent layer's recurrent "
                    "side: cal_gain_h / cal_offset_h, in MQH/BQH)"}
    return {"file": "chip/state.npz", "calibration": cal, "origin": cs["header"]["origin"], "design": cs["header"]["design"],
            "program_sigma": cs["header"]["program_sigma"], "placement_weights": cs["weights"],
            "stuck_cells_under_weights": sum(f["stuck_cells"] for f in faults),
            "weight_error_before": sum(f["error_before"] for f in faults),
            "weight_error": sum(f["error"] for f in faults),
            **({"finetune": ir.g.graph["finetune"]} if "finetune" in ir.g.graph else {})}


def compile_model(model: str | Path, out: str | Path, options: CompileOptions,
                  dump: Callable[[str, IR], None] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    out = Path(out)
    check_output_dir(out)  # fail early, before any work
    pdk = apply_overrides(load_pdk(options.pdk), options)
    if options.compensate_ir and pdk.cell["type"] == "1r" and pdk.tia["type"] != "ideal":
        raise PdkError("--compensate-ir", f"PDK '{pdk.name}' has 1r cells and {pdk.tia['type']} TIAs; the "
                                          "compensation models 1R tiles read by ideal TIAs, and 1T1R tiles")
    if pdk.models is None and options.corner != "tt":
        raise PdkError("--corner", f"PDK '{pdk.name}' has no device models, so corner '{options.corner}' does not apply")
    from .frontend.dynamics import is_dynamics

    if is_dynamics(Path(model)):     # an amsc_dynamics YAML: a continuous-time circuit, not a network
        return compile_dynamics(Path(model), out, options, pdk)
    if progress is not None:
        progress("front end (constant folding, lowering)", 0, 1)
    ir, data = load_model(model)
    external = ir.g.graph.pop("external_data", [])   # the source's external data files, copied with it
    source_sha = sha256(data)
    del data                      # the model's bytes (575 MB for VGG-19) are not needed any more
    verify_ir(ir)                 # sizes are checked before any array is made for them
    inputs = [ir.g.nodes[n]["origin"] for n in ir.nodes_of("input")]
    if len(inputs) > 1:
        raise UnsupportedOpError(model, f"the model has {len(inputs)} runtime inputs ({', '.join(map(repr, inputs))}); "
                                        "a compiled chip takes one input stream (fold the others into constants, or "
                                        "export the model with one input)")
    has_xbar = any(ir.g.nodes[n]["op"] in MATMUL_OPS for n in ir.g.nodes)
    host = sorted({d["attrs"]["op_type"] for _, d in ir.g.nodes(data=True) if d["op"] == "host"})
    calib = calibration_inputs(ir, options, Path(model))
    # hand the front end's IR over to the pipeline without keeping a reference here: its float
    # weights are then freed as soon as the passes have replaced them (1.1 GB for VGG-19)
    owned = [ir]
    del ir
    # a chip's placement weighs each row by its activity over the calibration inputs the datapath uses
    popts = options if options.chip_state is None or calib[2] is None else \
        dataclasses.replace(options, calibration=str(calib[2]))
    lowered = run_pipeline(owned.pop(), popts, pdk, dump=dump, progress=progress)
    if not has_xbar:
        raise InputError(model, "no node maps to a crossbar (no Gemm, MatMul or Conv with a constant weight), so "
                                "there is nothing to put on the chip" + (f"; host-only operators: {', '.join(host)}"
                                                                         if host else ""))
    # an ONNX source travels with the design: 'amsc run' compares the chip with it in onnxruntime
    onnx_source = Path(model) if Path(model).suffix.lower() not in (".yaml", ".yml") else None
    with OutputWriter(out) as plan:
        manifest = write_design(plan, lowered, pdk, options, Path(model).name, source_sha, calib, onnx_source,
                                progress, external)
        plan.commit(manifest)
    return manifest


def program_design(out: Path, manifest: dict, chip_state, dest: Path,
                   progress: Callable[[str, int, int], None] | None = None, finetune_data=None) -> dict:
    """``amsc program``: the compiled design ``out`` recompiled from its ONNX source with its own
    options (and calibration inputs) for the chip ``chip_state``, into ``dest``; with
    ``finetune_data`` (inputs, labels) its final layer fitted to them (passes/finetune.py)."""
    from .design.chipstate import load_state

    src = manifest["source"].get("file")
    if src is None:
        raise InputError(out, "holds no ONNX source to recompile for a chip (a YAML graph): compile the model with "
                              "--chip-state instead")
    load_state(chip_state, manifest)          # the chip's tiles are this design's, in its order
    if "chip" in manifest:
        raise InputError(out, f"is already programmed for a chip ({manifest['chip']['file']}); program the design "
                              "it was made from")
    calibration = manifest["source"].get("calibration")
    opts = CompileOptions.from_json(manifest["options"], dump_ir_after=None, chip_state=str(chip_state),
                                    calibration=None if calibration is None else str(out / calibration),
                                    finetune_data=None if finetune_data is None else tuple(map(str, finetune_data)))
    return compile_model(out / src, dest, opts, progress=progress)


def compile_dynamics(path: Path, out: Path, options, pdk) -> dict:
    """``amsc compile dyn.yaml -o OUT``: a continuous-time model through its stages (front end,
    lowering, circuit, controller, placement) into the SPICE deck, the manifest and the arrays."""
    from . import __version__
    from .backend.dynamics import TRAN_POINTS, _arrays, _generic_circuit
    from .backend.floorplan import placement_images, placement_json
    from .backend.render import environment, render, spice_num
    from .backend.spice import deck_context
    from .frontend.dynamics import check_options, load_dynamics
    from .ir.dynamics import (DIVERGED, MARGIN, MAX_SPAN, hidden_pre, noise_path, noise_plan, pathwise, quantize_w,
                              rate_bound, reference)
    from .ir.names import sanitize
    from .passes.dynamics import controller, place_dynamics, time_scale

    check_options(path, options)

    if "dynamics" not in pdk.templates:
        raise PdkError(options.pdk, f"PDK '{pdk.name}' has no dynamics template; continuous-time models compile on "
                                    "the generic and sky130_1t1r PDKs")
    data = path.read_bytes()
    model = load_dynamics(path)
    n, vf = model["n"], model["form"] == "vector_field"
    quant = {k: quantize_w(W, pdk.levels) for k, W in model["layers"].items()}
    Wq = {k: q * step for k, (q, step) in quant.items()}
    span = model["t_end"] * rate_bound(model, Wq)
    if span > MAX_SPAN:
        raise InputError(path, f"t_end: {model['t_end']:g} spans {span:.3g} of the model's fastest time constant (the "
                    f"inverse of its rate bound); the reference solve and the transient resolve at most {MAX_SPAN:.0e}, "
                    f"so t_end may be at most {MAX_SPAN / span * model['t_end']:.4g} for this model")
    sky = pdk.cell["type"] == "1t1r"
    plan = noise_plan(model, Wq, path)
    if plan is not None and sky:
        raise InputError(path, f"noise: the {pdk.name} dynamics circuit (transistor integrators and activations) has no "
                               "noise injection; compile a noisy model on the generic PDK")
    if sky:
        from .backend import dynamics_1t1r as d1

        char, k_x = d1.prepare(model, quant, pdk, options.corner, path)
    scaling = time_scale(model, Wq, pdk, path)
    k_t = scaling["time_s_per_unit"]
    forcing = None
    if plan is not None:    # the deck's own noise realization: its trajectory sets the amplitude scaling
        forcing = noise_path(model, plan, options.seed)
        t_ref, x_ref = pathwise(model, Wq, plan, forcing)
    else:
        t_ref, x_ref = reference(model, Wq)
    x_max = float(np.max(np.abs(x_ref))) or 1.0
    drive = max([1.0, float(np.max(np.abs(model["x0"]))), float(np.max(np.abs(model["b"])))]
                + [float(np.max(np.abs(model["U"][:, k])) * np.max(np.abs(p[:, 1]))) for k, p in enumerate(model["pwl"])])
    if x_max > DIVERGED * drive:
        raise InputError(path, f"the quantized model's trajectory grows to |x| = {x_max:.3g} over [0, t_end]; an "
                               "unbounded system has no amplitude scaling (check W's gain or shorten t_end)")
    v_fs = pdk.tia_v_out_fs
    a = v_fs / (x_max * (1 + MARGIN))
    sig = x_ref if not vf else hidden_pre(model, Wq, x_ref, t_ref)
    s_in_max = float(np.max(np.abs(sig))) or 1.0          # the largest argument of the activation
    s_max = {"tanh": 1.0, "sigmoid": 1.0}.get(model["activation"], s_in_max * (1 + MARGIN))
    design = sanitize(model["name"])
    srcs = [{"k": k, "name": sanitize(nm), "pwl": " ".join(f"{spice_num(t * k_t)} {spice_num(v)}" for t, v in p)}
            for k, (nm, p) in enumerate(zip(model["inputs"], model["pwl"]))]
    t_stop = model["t_end"] * k_t
    common = {**deck_context(model["name"], pdk, sha256(data)), "n": n, "sources": srcs,
              "tstep": spice_num(t_stop / TRAN_POINTS if plan is None else plan["dt"] * k_t / plan["substeps"]),
              "tstop": spice_num(t_stop), "k_t": spice_num(k_t),
              "activation": model["activation"], "form": model["form"]}
    if sky:
        built = d1.build(model, quant, pdk, options.corner, a, k_t, k_x, char, common, path)
    else:
        built = _generic_circuit(model, quant, pdk, a, k_t, s_max, s_in_max, x_max, common, forcing, plan)
    deck, tiles = built.pop("deck"), built.pop("tiles")
    ctrl = controller(model, pdk, k_t, path)
    ctrl_v = render(environment(pdk), "dynamics_ctrl", **deck_context(model["name"], pdk, sha256(data)), prefix=design,
                    n=n, adc_bits=pdk.adc_bits, cycles=ctrl["sample_cycles"], adc_lat=ctrl["adc_latency_cycles"],
                    cw=ctrl["counter_bits"], iw=ctrl["index_bits"], clock_hz=spice_num(ctrl["clock_hz"]),
                    k_t=spice_num(k_t)) if "dynamics_ctrl" in pdk.templates else None
    fp_ir = place_dynamics(design, model, tiles, pdk, options.seed)
    # the state node's volts per unit: sky130_1t1r's inverting integrators give -a
    sc = {"amplitude_v_per_unit": built.get("amplitude", a), "x_max_reference": x_max, "margin": MARGIN,
          "v_full_scale": v_fs, **scaling, **built["scaling_extra"]}
    man = {"amsc_version": __version__, "kind": "dynamics", "design": design,
           "source": {"name": path.name, "sha256": sha256(data), "file": f"source/{path.name}"},
           "pdk": pdk_summary(pdk), **({"ppa": pdk.ppa} if pdk.ppa is not None else {}),
           "dynamics": {"form": model["form"], "states": n, "hidden": model.get("hidden", 0),
                        "activation": model["activation"], "tau": model["tau"].tolist(), "t_end": model["t_end"],
                        "inputs": model["inputs"], "deck": "spice/dynamics.sp",
                        "layers": {k: {"levels": f"arrays/{k}_levels.npy", "w_step": step, "shape": list(q.shape)}
                                   for k, (q, step) in quant.items()},
                        "scaling": sc, "integrator": built["integrator"], "energy": built["energy"],
                        **({"noise": {**built["noise"], "sigma": model["noise"]["sigma"].tolist(), "dt": plan["dt"],
                                      "samples": plan["samples"], "bandwidth_per_unit": plan["bandwidth"],
                                      "bandwidth_hz": plan["bandwidth"] / k_t, "burn_in": plan["burn_in"],
                                      "substeps": plan["substeps"], "seed": options.seed}} if plan is not None else {}),
                        **built["circuit"],
                        **({"controller": {**ctrl, "rtl": f"rtl/{design}_ctrl.v", "top": f"{design}_ctrl"}}
                           if ctrl_v is not None else {})},
           "tiles": [{k: t[k] for k in ("name", "layer", "rows", "cols")} for t in tiles],
           "placement": {k: fp_ir.g.graph["floorplan"][k] for k in ("grid", "wirelength", "baseline_wirelength", "seed")}}
    with OutputWriter(out) as w:
        w.add("spice/dynamics.sp", deck)
        if "noise_text" in built:
            w.add(built["noise"]["file"], built.pop("noise_text"))
        if ctrl_v is not None:
            w.add(f"rtl/{design}_ctrl.v", ctrl_v)
            w.add("rtl/files.f", f"{design}_ctrl.v\n")
        w.add("placement.json", placement_json(fp_ir))
        png, svg = placement_images(fp_ir)
        w.add("placement.png", png)
        w.add("placement.svg", svg)
        for k, (q, _) in quant.items():
            w.add_npy(f"arrays/{k}_levels.npy", q)
        for k, v in built.get("arrays", {}).items():       # sky130_1t1r: the circuit's characterization
            w.add_npy(f"arrays/{k}.npy", v)
        w.add_file(f"source/{path.name}", path)
        # the model's own arrays travel with the design (the source YAML may name files next to it)
        for key, v in _arrays(model).items():
            w.add_npy(f"arrays/{key}.npy", v)
        man["files"] = [{"path": k, "sha256": v} for k, v in w.digests().items()]
        w.commit(man)
    return man
