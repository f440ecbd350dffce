"""amsc evaluate: what accuracy a compiled network keeps on the simulated chip.

The inputs run through
- ``float``: the source model in onnxruntime (the reference of every other run);
- ``ideal``: the quantized chip with ideal tiles (``amsc run --engine ideal``: the integer datapath
  where it was generated, bit-exact with the RTL);
- the circuit engine, when one is chosen: every crossbar read computed from the emitted netlists,
  ``mna`` (a sparse solve; linear tiles) or ``ngspice`` (sign-off, and nonlinear 1T1R tiles).
Each run reports top-1 agreement with float and the output SNR, accuracy when labels are given,
and per layer the error of its output against the ideal run (``per_layer``).

``--mc K`` draws K Monte-Carlo chips from the device model (the PDK's ``variation`` section, see
:func:`draw_chip`; ``--sigma`` sets the programming sigma, and is all there is for a PDK without
one). Around its target level every cell gets ``G (1 + sigma e)``, ``e`` standard normal (seeded),
clipped at 0; stuck-at cells sit at G_min or G_max; every conductance drifts by ``(t / t0)^-nu`` at
``--read-time t``; and every read adds the read noise of its cells. The network runs with those
chips on the ideal engine (the circuit engines read the emitted netlists). With write-verify in the
PDK, sigma is what its iterations leave (``max(sigma0 f^N, floor)``), its reads find the stuck cells
and the partner of each is programmed to keep the pair's difference; both modes are reported,
write-verified and one-shot, with the programming cost (pulses and energy per weight), and each
non-ideality alone. The report
gives mean and standard deviation over the samples, and an accuracy-against-sigma curve over a few
multiples of the programming sigma.

``--sweep`` recompiles the design's ONNX source (``OUT/source/``, with its calibration inputs) in a
temporary folder with one compile option changed at a time (SWEEPS: ADC bits, weight bits, and the
wire resistance of a ``--parasitics`` mesh, read through the MNA engine) and reports accuracy
against each.

Writes ``OUT/eval.json`` (keys ``float``, ``ideal``, the circuit engine's name, ``mc`` and
``sweeps``), ``OUT/eval.html`` and the plots in ``OUT/eval-report/``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from ..design.chipstate import check_rates, draw_state
from ..errors import InputError
from ..passes.calibrate import fit_group
from ..passes.reads import ReadSampler
from ..passes.fault_map import pair_levels, place_chip, stuck_levels, tile_banks
from ..frontend.common import check_labels, load_labels
from ..verify.report import figure, png_bytes, render_page, write_page
from .run import Design, agreement

#: Multiples of sigma on the accuracy-against-sigma curve (each point: the --mc samples, at most 8).
SIGMA_CURVE = (0.0, 0.5, 1.0, 2.0, 4.0)
#: ``--sweep``: each compile option, its values, and the engine each recompiled design runs on
#: (wire resistance needs a circuit engine: the mesh is only in the netlists).
SWEEPS = (("adc_bits", (4, 5, 6, 7, 8, 10), "ideal"), ("weight_bits", (2, 3, 4, 5, 6), "ideal"),
          ("wire_r", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0), "mna"))
REPORT_DIR = "eval-report"
#: Remedies of the Monte Carlo, added in turn: none (where the compiler put the weights; write-verify
#: still rebalances the pairs it finds stuck), mapping (each chip tested, its weights placed around
#: its stuck cells: passes/fault_map.py), spares (for a design compiled with --spare-rows/-cols: the
#: placement may use them), calibration (then each column's gain and offset measured and absorbed
#: by the requantizer), and with ``--finetune-data`` finetune (then the final layer and its
#: requantizer fitted to labelled inputs on each chip, as ``amsc program --finetune-data`` does:
#: :func:`finetune_chip`). All of them (the last) are applied to ``mc.modes``.
REMEDIES = ("none", "mapping", "calibration")
REMEDY_LABELS = {"none": "as compiled", "mapping": "fault-aware placement", "spares": "placement with the spares",
                 "calibration": "placement + column calibration",
                 "finetune": "+ fine-tuned final layer (--finetune-data)",
                 "chip": "the chip as programmed"}
#: Total stuck-at rates of the accuracy-against-fault-rate curve (HRS : LRS as in the device model).
FAULT_CURVE = (0.0, 0.025, 0.05, 0.1, 0.15, 0.2)
#: calibration inputs that weigh the placement's rows and give the read set that calibrates the columns
CAL_ROWS = 256


def _metrics(ys: list[np.ndarray], ref: list[np.ndarray] | None, labels: np.ndarray | None) -> dict:
    y = ys[0]
    rep: dict = {}
    if ref is not None:
        a = agreement(y, ref[0])
        rep["snr_db"] = a["snr_db"] if np.isfinite(a["snr_db"]) else None   # None: identical to float
        rep["top1_agreement"] = a.get("top1_agreement")
    if labels is not None:
        rep["accuracy"] = float(np.mean(y.reshape(y.shape[0], -1).argmax(1) == labels))
    return rep


def _per_layer(trace: dict, ideal: dict) -> dict:
    """Per layer, the error of a run's output against the ideal run's: RMS relative to the ideal
    output's RMS, the largest absolute error, and that in codes of the layer's map where it has one."""
    res = {}
    for name, (v, step) in trace.items():
        w = ideal[name][0]
        e = np.asarray(v, float) - np.asarray(w, float)
        rms_w = float(np.sqrt(np.mean(w ** 2))) or 1.0
        r = {"rms_rel": float(np.sqrt(np.mean(e ** 2))) / rms_w, "max_abs": float(np.max(np.abs(e))) if e.size else 0.0}
        if step:
            r["max_codes"] = r["max_abs"] / step
        res[name] = r
    return res


def device_model(manifest: dict, sigma: float | None, read_time: float | None,
                 stuck_rates: tuple[float, float] | None = None) -> dict | None:
    """The Monte-Carlo device model: the compiled PDK's ``variation`` (or, without one, programming
    error only), with ``--sigma`` replacing the one-shot programming sigma and ``--stuck-rates`` the
    stuck-at rates (HRS, LRS); None if neither exists."""
    var = manifest.get("variation")
    if stuck_rates is not None:
        check_rates(*stuck_rates)
    if var is None:
        if sigma is None:
            return None
        var = {"program_sigma": sigma, "read_noise_sigma": 0.0, "stuck_hrs_rate": 0.0, "stuck_lrs_rate": 0.0,
               "drift_nu": 0.0, "drift_t0_s": 1.0}
    var = {**var, **({"program_sigma": sigma} if sigma is not None else {})}
    if stuck_rates is not None:
        var["stuck_hrs_rate"], var["stuck_lrs_rate"] = (float(r) for r in stuck_rates)
    t0 = var["drift_t0_s"]
    t = t0 if read_time is None else read_time
    var["read_time_s"] = t
    var["drift_factor"] = (t / t0) ** -var["drift_nu"] if t > t0 else 1.0
    return var


def mode_sigma(var: dict, mode: str) -> float:
    """Programming sigma of a mode: one-shot, or what write-verify's iterations leave."""
    if mode == "one_shot":
        return var["program_sigma"]
    wv = var["write_verify"]
    return max(var["program_sigma"] * wv["sigma_factor"] ** wv["iterations"], wv["sigma_floor"])


def write_verify_cost(var: dict, design: Design) -> dict:
    """Programming cost of write-verify: per weight (two cells) and for every cell of the design."""
    wv = var["write_verify"]
    cells = sum(t["tile_size"][0] * t["tile_size"][1] for t in design.manifest["tiles"])
    pulses = 2 * wv["iterations"]                      # per weight: two cells, one pulse per iteration each
    return {"iterations": wv["iterations"], "pulses_per_weight": pulses, "reads_per_weight": pulses,
            "energy_per_weight_j": pulses * wv["pulse_energy_pj"] * 1e-12,
            "energy_all_cells_j": cells * wv["iterations"] * wv["pulse_energy_pj"] * 1e-12,
            "time_per_cell_s": wv["iterations"] * wv["pulse_ns"] * 1e-9, "cells": cells}


def calibration_reads(design: Design, x: np.ndarray) -> tuple[dict, dict, str]:
    """The design's calibration inputs (or, without them, the first evaluation inputs) run once
    through the ideal chip: per tile, a seeded sample of its input vectors (the read set a tester
    drives to calibrate its columns) and each row's mean square input over all of them (the
    placement's weights: a busy row's error costs more); and where they came from."""
    cal = design.manifest["source"].get("calibration")
    if cal is not None:
        x = design.load_inputs(design.out / cal)
        note = f"calibration inputs ({min(len(x), CAL_ROWS)} rows of {cal})"
    else:
        note = f"the first {min(len(x), CAL_ROWS)} evaluation inputs (the design holds no calibration inputs)"
    x = x[:CAL_ROWS]
    acc: dict = {}
    sampler = ReadSampler()

    def observe(name, xs):
        sampler.add(name, xs)
        xs = np.asarray(xs, np.float64).reshape(-1, xs.shape[-1])
        s, n = acc.get(name, (0.0, 0))
        acc[name] = (s + (xs * xs).sum(axis=0), n + xs.shape[0])

    design.run(x, "ideal", observe=observe)
    return sampler.sets(), {k: s / max(n, 1) for k, (s, n) in acc.items()}, note


def column_calibration(design: Design, chip: dict, reads: dict, read_noise=None) -> dict:
    """Per-column calibration of one programmed chip: the read set through each layer's tiles, every
    output column's summed result against the targets' (``sum_t X_t (G+ - G-)`` against ``sum_t X_t
    (lpos - lneg) G_step`` over the layer's row tiles), a least-squares gain a_j and offset b_j, which
    the requantizer absorbs: ``(acc - b_j) / a_j`` is ``acc * MQ_j / a_j`` with the bias less ``b_j MQ_j /
    a_j``. Returned per tile as ``(1 / a_j, b_j / row tiles, 0)`` over its columns, applied to each tile
    read (the same sum) as ``(read - offset) * scale + add``; a recurrent layer's input-row and
    recurrent-row tiles are two sums, each calibrated on its own. The fit is
    ``passes/calibrate.py``'s, which folds it into a chip-specific design's requantizer."""
    from ..ir.ops.recurrent import tile_part

    pdk = design.manifest["pdk"]
    g_step = (pdk["g_max"] - pdk["g_min"]) / (pdk["levels"] - 1)
    groups: dict = {}
    for t in design.manifest["tiles"]:
        # a recurrent layer's input rows and recurrent rows add to two sums, calibrated apart
        rec = design.ir.g.nodes[t["layer"]]["attrs"].get("recurrent")
        part = tile_part(design.ir.g.nodes[t["name"]]["attrs"], rec["inputs"]) if rec else 0
        groups.setdefault((t["layer"], tuple(t["cols"]), part), []).append(t["name"])
    out = {}
    for (_, _, part), names in groups.items():
        if any(n not in reads or n not in chip for n in names):
            continue
        a, b = fit_group(design.ir, names, reads, g_step, lambda n, X: Design._read(X, *chip[n], read_noise))
        # a design for one chip already folds its own calibration (cal_gain a_d, cal_offset b_d, in
        # the float IR's units) into the requantizer: the reads are mapped to what, through it, gives
        # the targets, (meas - b) a_d / a + b_d
        layer = design.ir.g.nodes[design.manifest_tile(names[0])["layer"]]["params"]
        a_d, b_d = np.ones_like(a), np.zeros_like(b)
        if "cal_gain" in layer:
            c0, c1 = design.manifest_tile(names[0])["cols"]
            sfx = "_h" if part else ""
            a_d, b_d = layer["cal_gain" + sfx][c0:c1], layer["cal_offset" + sfx][c0:c1] / design.read_unit(names[0])
        for n in names:
            out[n] = (a_d / a, b / len(names), b_d / len(names))
    return out


def finetune_setup(design: Design, paths) -> dict:
    """``--finetune-data X.npy Y.npy``: the labelled inputs that fine-tune every calibrated
    Monte-Carlo chip, and the final layer they fit (passes/finetune.py), checked in one line each."""
    from ..passes.finetune import final_layer, load_labelled

    if "chip" in design.manifest:
        raise InputError("--finetune-data", f"{design.out} is programmed for one chip; fine-tune it with "
                                            "'amsc program --finetune-data'")
    n = final_layer(design.ir)
    x, y = load_labelled(paths, design.ir, len(design.ir.g.nodes[n]["params"]["b"]))
    tiles = design.ir.inputs(n)
    seen: dict = {}
    design.run(x[:2], "ideal", observe=lambda t, xs: seen.setdefault(t, np.shape(xs)[0]) if t in tiles else None)
    if any(v != 2 for v in seen.values()):
        raise InputError("--finetune-data", f"adapts a dense final layer (one read per input), and "
                                            f"'{design.ir.g.nodes[n]['origin']}' reads its crossbar at several positions")
    return {"layer": n, "tiles": tiles, "x": x, "y": y}


def finetune_chip(design: Design, tune: dict, chip: dict, cal: dict, levels: dict, sigma: float, var: dict, rng,
                  read_noise=None) -> tuple[dict, dict]:
    """One placed and calibrated Monte-Carlo chip fine-tuned as ``amsc program --finetune-data`` fits
    a chip (passes/finetune.py): the labelled inputs run through the chip up to its final layer, whose
    effective level differences (the pairs' conductances times their column's calibrated gain) are
    fitted, each within what its pair reaches, with a per-column scale and bias (``fit_layer``). The
    pairs it moves are reprogrammed (the mode's ``sigma``, stuck cells untouched) and the scale and
    bias join the columns' calibration. Returns the chip's conductances and column calibration."""
    from ..passes.finetune import difference_levels, fit_layer, pair_reach

    pdk = design.manifest["pdk"]
    g_min, top = pdk["g_min"], pdk["levels"] - 1
    g_step = (pdk["g_max"] - g_min) / top
    n, tiles = tune["layer"], tune["tiles"]
    p = design.ir.g.nodes[n]["params"]
    seen: dict = {}
    design.run(tune["x"], "ideal", conductances=chip, read_noise=read_noise, column_cal=cal,
               observe=lambda t, xs: seen.__setitem__(t, np.asarray(xs, np.float64)) if t in tiles else None)
    ru = design.read_unit(tiles[0])          # the reads' inputs in the float IR's units
    at = {t: design.ir.g.nodes[t]["attrs"] for t in tiles}
    K, M = max(a["row1"] for a in at.values()), len(p["b"])
    h, d0, lo, hi = np.zeros((len(tune["y"]), K)), np.zeros((K, M)), np.zeros((K, M)), np.zeros((K, M))
    gain, shift = np.ones(M), np.zeros(M)
    for t, a in at.items():
        r, c = slice(a["row0"], a["row1"]), slice(a["col0"], a["col1"])
        sc, off, add = cal.get(t, (1.0, 0.0, 0.0))
        gain[c] = sc
        shift[c] += add - sc * off
        h[:, r] = seen[t] * ru
        d0[r, c] = sc * (chip[t][0] - chip[t][1]) / g_step
        lo[r, c], hi[r, c] = (sc * v for v in pair_reach(*levels[t][2:], top))
    fit = fit_layer(h, tune["y"], d0, lo, hi, p["w_scale"] * g_step, p["b"] + p["w_scale"] * ru * shift, top, gain)
    chip, cal = dict(chip), dict(cal)
    for t, a in at.items():
        r, c = slice(a["row0"], a["row1"]), slice(a["col0"], a["col1"])
        lp0, ln0, sp, sn = levels[t]
        d = fit["D"][r, c] / gain[c]
        lp, ln = difference_levels(d, sp, sn, top)
        new = fit["moved"][r, c] & ((lp != lp0) | (ln != ln0))     # a rewritten pair: its healthy cells anew
        pair = []
        for lv, st, g in ((lp, sp, chip[t][0]), (ln, sn, chip[t][1])):
            tg = g_min + lv * g_step
            drawn = np.clip(tg * (1.0 + sigma * rng.standard_normal(tg.shape)), 0.0, None) * var["drift_factor"]
            pair.append(np.where(new & np.isnan(st), drawn, g))
        chip[t] = tuple(pair)
        # the fitted scale and bias: read * gain * alpha, and the bias change once per column (first row tile)
        add = (fit["beta"] - p["b"])[c] / (ru * p["w_scale"][c]) if a["row0"] == 0 else 0.0
        cal[t] = (gain[c] * fit["alpha"][c], 0.0, add)
    return chip, cal


def draw_chip(design: Design, var: dict, sigma: float, rng, verify: bool = False, stuck_out: dict | None = None,
              state=None, placement: dict | None = None, levels_out: dict | None = None) -> dict:
    """One Monte-Carlo chip: every tile's (G+, G-) drawn around its target levels (see the module
    docstring). The chip's stuck cells come from ``state`` (a chip state over the tiles' physical
    arrays; drawn from ``rng`` at the model's rates if None); each tile's weights sit on its physical
    rows and pair columns ``placement[tile]`` (``rows``, ``cols``: the fault-aware placement of a
    tested chip), or where the compiler put them. ``verify``: write-verify reads every cell, so it
    finds the stuck ones, and programs the healthy partner of a stuck cell to keep the pair's
    difference, ``G- = G+stuck - (G+ - G-)`` or ``G+ = G-stuck + (G+ - G-)``, as far as [G_min, G_max]
    allows; a placed chip knows its stuck cells from its test and does the same. ``stuck_out``
    receives each tile's stuck conductances under its weights (NaN where a cell is healthy), and
    ``levels_out`` its programmed target levels and stuck levels ``(lpos, lneg, stuck+, stuck-)``."""
    pdk = design.manifest["pdk"]
    g_min, g_max = pdk["g_min"], pdk["g_max"]
    top = pdk["levels"] - 1
    g_step = (g_max - g_min) / top
    if state is None:
        state = draw_state(design.manifest, 0, var["stuck_hrs_rate"], var["stuck_lrs_rate"], sigma, rng=rng)
    out = {}
    for n in design.ir.nodes_of("xbar_tile"):
        p = design.ir.g.nodes[n]["params"]
        lp, ln = p["lpos"].astype(np.float64), p["lneg"].astype(np.float64)
        if "stuck" in p:      # a design programmed for one chip: its stuck cells are known and placed
            sp, sn = stuck_levels(p, g_min, g_step)
        else:
            sp, sn = state.stuck_levels(n)
            where = placement[n] if placement else {"rows": np.arange(lp.shape[0]), "cols": np.arange(lp.shape[1])}
            ix = np.ix_(where["rows"], where["cols"])
            sp, sn = sp[ix], sn[ix]
        if stuck_out is not None:
            stuck_out[n] = (g_min + sp * g_step, g_min + sn * g_step)
        if verify or placement:
            lp, ln = pair_levels(lp, ln, sp, sn, top)
        if levels_out is not None:
            levels_out[n] = (lp, ln, sp, sn)
        pair = []
        for lv, st in ((lp, sp), (ln, sn)):
            t = g_min + lv * g_step
            g = np.clip(t * (1.0 + sigma * rng.standard_normal(t.shape)), 0.0, None)
            pair.append(np.where(np.isnan(st), g, g_min + st * g_step) * var["drift_factor"])
        out[n] = tuple(pair)
    return out


def _tile_levels(design: Design) -> dict:
    return {n: (design.ir.g.nodes[n]["params"]["lpos"], design.ir.g.nodes[n]["params"]["lneg"])
            for n in design.ir.nodes_of("xbar_tile")}


def _monte_carlo(design: Design, x, ref, y, var: dict, modes: list[str], mc: int, metric: str, rng, progress,
                 done: int, total: int, tune: dict | None = None) -> tuple[dict, int]:
    levels = _tile_levels(design)
    chip = design.manifest.get("chip")
    bank = tile_banks(design.ir, design.manifest["options"])   # rows and columns stay in their banks
    spares: dict = {}
    reads, weights, weights_note = calibration_reads(design, x)
    if chip is not None:
        # programmed for one chip: its stuck cells are the chip's (the tiles' stuck maps), already
        # placed; the Monte Carlo draws the programming and reads of that chip, no other faults
        var = {**var, "stuck_hrs_rate": 0.0, "stuck_lrs_rate": 0.0}
        remedies = ("chip", "calibration")
        weights, weights_note = None, f"the chip's own placement ({chip['file']})"
    else:
        # spares are a compile option: a design with them is placed without and then with their repair
        spares = {t["name"]: (t["spares"]["rows"], t["spares"]["cols"]) for t in design.manifest["tiles"]
                  if "spares" in t}
        remedies = REMEDIES[:2] + (("spares",) if spares else ()) + REMEDIES[2:] + (("finetune",) if tune else ())
    default = remedies[-1]

    def chip_state(v=var):
        return draw_state(design.manifest, 0, v["stuck_hrs_rate"], v["stuck_lrs_rate"], var["program_sigma"], rng=rng)

    def sample(sig, v=var, verify=False, state=None, placement=None, calibrate=False) -> list[dict]:
        """One programmed chip's metrics, and with ``calibrate`` the same chip's after its columns'
        calibration (and, with ``tune``, after its final layer's fine-tuning)."""
        lv: dict = {}
        g = draw_chip(design, v, sig, rng, verify, state=state, placement=placement, levels_out=lv)
        noise = (v["read_noise_sigma"], rng) if v["read_noise_sigma"] > 0 else None
        out = [_metrics(design.run(x, "ideal", conductances=g, read_noise=noise), ref, y)]
        if calibrate:
            cal = column_calibration(design, g, reads, noise)
            out.append(_metrics(design.run(x, "ideal", conductances=g, read_noise=noise, column_cal=cal), ref, y))
            if tune is not None and chip is None:
                g, cal = finetune_chip(design, tune, g, cal, lv, sig, v, rng, noise)
                out.append(_metrics(design.run(x, "ideal", conductances=g, read_noise=noise, column_cal=cal), ref, y))
        return out

    def every_remedy(sig, v=var, verify=False, state=None) -> dict:
        """One chip's test results, programmed as compiled, and placed around its stuck cells (then
        calibrated): ``{remedy: metrics}``."""
        if chip is not None:
            return dict(zip(remedies, sample(sig, v, verify, state, None, True)))
        placed = place_chip(levels, state, weights, bank=bank)
        moved.append([placed[n]["cost"] / placed[n]["cost_before"] for n in placed if placed[n]["cost_before"] > 0])
        if not spares:
            return dict(zip(remedies, sample(sig, v, verify, state) + sample(sig, v, verify, state, placed, True)))
        inside = place_chip(levels, state, weights, spares, bank)   # the same chip, its spares left unused
        return dict(zip(remedies, sample(sig, v, verify, state) + sample(sig, v, verify, state, inside)
                        + sample(sig, v, verify, state, placed, True)))

    # each chip: one test (its stuck cells), one placement, then programmed in every mode, without
    # and with the remedies
    res = {mode: {r: [] for r in remedies} for mode in modes}
    moved: list = []
    for _ in range(mc):
        state = chip_state()
        for mode in modes:
            for r, met in every_remedy(mode_sigma(var, mode), verify=mode == "write_verify", state=state).items():
                res[mode][r].append(met)
        progress("monte carlo (chips, each mode, each remedy)", done := done + 1, total)

    def summary(v):
        out = {"mean": float(np.mean([s[metric] for s in v])), "std": float(np.std([s[metric] for s in v]))}
        snr = [s["snr_db"] for s in v if s.get("snr_db") is not None]
        if snr:      # the output's SNR against float, where there is a float reference
            out["snr_db"] = float(np.mean(snr))
        return out

    stats = {mode: {r: summary(v) for r, v in res[mode].items()} for mode in modes}
    main_mode = modes[0]
    main_sigma = mode_sigma(var, main_mode)
    wv = main_mode == "write_verify"

    curve = []
    for m in SIGMA_CURVE:
        pts = []
        for _ in range(min(mc, 8)):
            pts.append(every_remedy(m * main_sigma, verify=wv, state=chip_state())[default][metric])
            progress("sigma curve", done := done + 1, total)
        curve.append({"sigma": m * main_sigma, "mean": float(np.mean(pts)), "std": float(np.std(pts)),
                      "samples": len(pts)})
    # accuracy against the stuck-at rate (HRS : LRS as in the model), with and without the remedies
    hrs, lrs = var["stuck_hrs_rate"], var["stuck_lrs_rate"]
    share = hrs / (hrs + lrs) if hrs + lrs > 0 else 0.5
    faults = []
    for f in (FAULT_CURVE if chip is None else ()):
        v = {**var, "stuck_hrs_rate": f * share, "stuck_lrs_rate": f * (1 - share)}
        pts = {r: [] for r in remedies}
        for _ in range(min(mc, 8)):
            for r, met in every_remedy(main_sigma, v, wv, chip_state(v)).items():
                pts[r].append(met[metric])
            progress("fault-rate curve", done := done + 1, total)
        faults.append({"rate": f, **{r: {"mean": float(np.mean(p)), "std": float(np.std(p))} for r, p in pts.items()}})
    # each non-ideality alone (the others off, no remedy), at the first mode's sigma: which one costs the accuracy
    effects = {}
    off = {"read_noise_sigma": 0.0, "stuck_hrs_rate": 0.0, "stuck_lrs_rate": 0.0, "drift_factor": 1.0}
    for name, keep in (("programming", ()), ("read_noise", ("read_noise_sigma",)),
                       ("stuck_at", ("stuck_hrs_rate", "stuck_lrs_rate")), ("drift", ("drift_factor",))):
        v = {**var, **{k: val for k, val in off.items() if k not in keep}}
        if name != "programming" and all(v[k] == off[k] for k in keep):
            continue   # the model has none of it
        pts = []
        for _ in range(mc):
            pts.append(sample(main_sigma if name == "programming" else 0.0, v, wv, chip_state(v))[0][metric])
            progress(f"monte carlo ({name.replace('_', ' ')} alone)", done := done + 1, total)
        effects[name] = {"mean": float(np.mean(pts)), "std": float(np.std(pts))}
    main = stats[main_mode][default]
    rep = {"engine": "ideal tiles with Monte-Carlo chips (programming error, stuck-at faults, drift, read noise)",
           "effects": effects,
           "mode": main_mode, "samples": res[main_mode][default], "sigma": main_sigma, "mean": main["mean"],
           "std": main["std"], "metric": metric, "sigma_curve": curve, "fault_curve": faults,
           "remedies": {"default": default, "applied": list(remedies),
                        "placement_weights": weights_note,
                        "placement_cost_ratio": float(np.mean([r for c in moved for r in c])) if any(moved) else None,
                        "ablation": stats},
           "modes": {k: {"sigma": mode_sigma(var, k), **stats[k][default]} for k in modes},
           "device": {k: v for k, v in var.items() if k != "write_verify"}}
    if "write_verify" in var:
        rep["write_verify"] = write_verify_cost(var, design)
    return rep, done


def _err_vs(ys: list[np.ndarray], base: list[np.ndarray]) -> float:
    """RMS of the outputs' difference from ``base`` over base's RMS."""
    e = np.sqrt(np.mean((np.asarray(ys[0], float) - base[0]) ** 2))
    return float(e / (np.sqrt(np.mean(np.asarray(base[0], float) ** 2)) or 1.0))


def _sweep(design: Design, x, ref, y, metric: str, progress, ideal: list[np.ndarray]) -> dict:
    """Accuracy against each SWEEPS option: the source recompiled with that option changed. Each wire
    resistance is compiled twice, as is and with --compensate-ir (where the PDK allows it), and the
    point reports how much of the loss against the ideal-wire chip compensation recovers: of the
    output error against it (``recovered_error``), and of the accuracy (``recovered_accuracy``)."""
    import dataclasses
    import tempfile

    from ..driver import compile_model
    from ..options import CompileOptions

    m = design.manifest
    src = m["source"].get("file")
    if src is None:
        raise InputError("--sweep", "recompiling needs the design's ONNX source; this design holds none (a YAML graph)")
    base = CompileOptions.from_json(m["options"], dump_ir_after=None, **(
        {"calibration": str(design.out / m["source"]["calibration"])} if "calibration" in m["source"] else {}))
    comp_ok = m["pdk"]["cell"] == "1t1r" or m["pdk"]["tia"] == "ideal"     # what --compensate-ir models
    ideal_metric = _metrics(ideal, ref, y)[metric]
    res = {}
    with tempfile.TemporaryDirectory(prefix="amsc-sweep-") as tmp:
        for key, values, eng in SWEEPS:
            if eng == "mna" and m["pdk"]["cell"] != "1r":
                eng = "ngspice"      # a nonlinear 1T1R mesh needs the simulator
            pts = []
            for v in values:
                change = {key: v, **({"parasitics": True, "compensate_ir": False} if key == "wire_r" else {})}
                pt = {"value": v, "engine": eng}
                for variant in ((False, True) if key == "wire_r" and comp_ok else (False,)):
                    out = Path(tmp) / f"{key}_{v}_{int(variant)}"
                    compile_model(design.out / src, out,
                                  dataclasses.replace(base, **{**change, **({"compensate_ir": True} if variant else {})}))
                    ys = Design(out).run(x, eng)
                    got = {metric: _metrics(ys, ref, y)[metric], "err_vs_ideal": _err_vs(ys, ideal)}
                    if variant:
                        pt["compensated"] = got
                    else:
                        pt.update(got)
                    shutil.rmtree(out, ignore_errors=True)
                if "compensated" in pt:
                    c = pt["compensated"]
                    pt["recovered_error"] = 1.0 - c["err_vs_ideal"] / pt["err_vs_ideal"] if pt["err_vs_ideal"] else None
                    lost = ideal_metric - pt[metric]
                    pt["recovered_accuracy"] = (c[metric] - pt[metric]) / lost if lost > 0 else None
                pts.append(pt)
                progress(f"sweep {key}", 1, 1)
            res[key] = pts
    return res


def _plots(rep: dict, traces: dict) -> dict[str, bytes]:
    pngs = {}
    runs = [k for k in rep["runs"] if k not in ("float", "ideal")]
    layers = list(rep["ideal"]["per_layer"])
    if runs and layers:
        fig = figure(6.0, 3.2)
        ax = fig.add_axes((0.1, 0.3, 0.86, 0.6))
        x = np.arange(len(layers))
        for k, r in enumerate(runs):
            ax.bar(x + 0.8 * k / len(runs), [100 * rep[r]["per_layer"][n]["rms_rel"] for n in layers],
                   0.8 / len(runs), label=r)
        ax.set_xticks(x, layers, rotation=60, fontsize=7)
        ax.set_ylabel("RMS error vs ideal [%]")
        ax.legend(fontsize=8)
        ax.set_title("per-layer error of the circuit engine against ideal tiles", fontsize=9)
        pngs["per_layer.png"] = png_bytes(fig)
        fig = figure(6.0, 1.6 * ((len(layers) + 2) // 3) + 0.6)
        for k, n in enumerate(layers):
            ax = fig.add_subplot((len(layers) + 2) // 3, 3, k + 1)
            v, step = traces[runs[-1]][n]
            e = (np.asarray(v, float) - traces["ideal"][n][0]).ravel() / (step or 1.0)
            ax.hist(e, bins=31, color="#4477aa")
            ax.set_title(n, fontsize=7)
            ax.tick_params(labelsize=6)
        fig.suptitle(f"{runs[-1]} - ideal, per layer [{'codes' if traces['ideal'][layers[0]][1] else 'value'}]",
                     fontsize=8)
        fig.tight_layout()
        pngs["per_layer_hist.png"] = png_bytes(fig)
    labels = {"adc_bits": "ADC bits", "weight_bits": "weight bits (conductance levels = 2^bits)",
              "wire_r": "wire resistance per cell pitch [ohm] (--parasitics, MNA engine)"}
    for key, pts in rep.get("sweeps", {}).items():
        metric = next(k for k in ("accuracy", "top1_agreement") if k in pts[0])
        fig = figure(5.5, 3.0)
        ax = fig.add_axes((0.12, 0.2, 0.84, 0.68))
        ax.plot([p["value"] for p in pts], [100 * p[metric] for p in pts], marker="o", label="as compiled")
        if key == "wire_r":
            ax.set_xscale("log")
            if all("compensated" in p for p in pts):
                ax.plot([p["value"] for p in pts], [100 * p["compensated"][metric] for p in pts], marker="s",
                        label="--compensate-ir")
                ax.legend(fontsize=8)
        ax.set_xlabel(labels[key])
        ax.set_ylabel(f"{metric.replace('_', ' ')} [%]")
        pngs[f"sweep_{key}.png"] = png_bytes(fig)
    mc = rep.get("mc")
    if mc:
        key = "accuracy" if "accuracy" in mc["samples"][0] else "top1_agreement"
        fig = figure(5.5, 3.0)
        ax = fig.add_axes((0.12, 0.2, 0.84, 0.68))
        ax.hist([100 * s[key] for s in mc["samples"]], bins=min(20, len(mc["samples"])), color="#4477aa")
        ax.set_xlabel(f"{key.replace('_', ' ')} [%] over {len(mc['samples'])} samples, sigma {mc['sigma']:g}")
        ax.set_ylabel("samples")
        pngs["mc.png"] = png_bytes(fig)
        fig = figure(5.5, 3.0)
        ax = fig.add_axes((0.12, 0.2, 0.84, 0.68))
        pts = mc["sigma_curve"]
        ax.errorbar([p["sigma"] for p in pts], [100 * p["mean"] for p in pts], [100 * p["std"] for p in pts],
                    marker="o", capsize=3)
        ax.set_xlabel("programming sigma (relative)")
        ax.set_ylabel(f"{key.replace('_', ' ')} [%]")
        pngs["sigma.png"] = png_bytes(fig)
    if mc and mc["fault_curve"]:
        fig = figure(5.5, 3.0)
        ax = fig.add_axes((0.12, 0.2, 0.84, 0.68))
        pts = mc["fault_curve"]
        for remedy in mc["remedies"]["applied"]:
            ax.errorbar([100 * p["rate"] for p in pts], [100 * p[remedy]["mean"] for p in pts],
                        [100 * p[remedy]["std"] for p in pts], marker="o", capsize=3,
                        label=REMEDY_LABELS.get(remedy, remedy))
        ax.set_xlabel(f"cells stuck at HRS or LRS [%] ({mc['mode'].replace('_', '-')} chips)")
        ax.set_ylabel(f"{key.replace('_', ' ')} [%]")
        ax.legend(fontsize=8)
        pngs["faults.png"] = png_bytes(fig)
    return pngs


def _html(rep: dict, pngs: dict) -> str:
    """OUT/eval.html of a network design, from templates/evaluate_network.html.j2."""
    def pct(v):
        return "—" if v is None else f"{100 * v:.2f} %"

    def pm(a):
        return f"{100 * a['mean']:.2f} % \u00b1 {100 * a['std']:.2f} %"

    layer_rows = [(k, n, r) for k in rep["runs"] if k != "ideal" for n, r in rep[k].get("per_layer", {}).items()]
    return render_page(Path(__file__).parent / "templates", "evaluate_network.html.j2", rep=rep, pct=pct, pm=pm,
                       layer_rows=layer_rows, mc=rep.get("mc"), labels=REMEDY_LABELS, sweeps=rep.get("sweeps", {}),
                       images=sorted(pngs), report_dir=REPORT_DIR)


def evaluate_design(out, inputs, labels=None, engine: str = "ideal", samples: int | None = None, mc: int = 0,
                    sigma: float | None = None, seed: int = 0, progress=None, sweep: bool = False,
                    write_verify: bool | None = None, read_time: float | None = None,
                    stuck_rates: tuple[float, float] | None = None, finetune_data=None) -> dict:
    """``amsc evaluate``; returns the report (also written to OUT/eval.json, eval.html, eval-report/)."""
    from .run import ENGINES
    from ..design import write_json_atomic

    progress = progress or (lambda *a: None)
    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise InputError("--engine", f"unknown engine '{engine}'; expected one of {', '.join(ENGINES)}")
    if mc < 0:
        raise InputError("--mc", f"{mc}; expected a positive number of samples")
    if sigma is not None and sigma < 0:
        raise InputError("--sigma", f"{sigma:g}; expected a programming sigma >= 0")
    design = Design(out)
    x = design.load_inputs(inputs)
    y = None
    if labels is not None:
        y = load_labels(labels, x.shape[0])
    if samples is not None:
        if samples > x.shape[0]:
            raise InputError(inputs, f"holds {x.shape[0]} inputs; --samples {samples} asks for more")
        x, y = x[:samples], (None if y is None else y[:samples])
    if read_time is not None and not read_time > 0:
        raise InputError("--read-time", f"{read_time:g}; expected a positive time in seconds")
    var = device_model(design.manifest, sigma, read_time, stuck_rates)
    for flag, given in (("--stuck-rates", stuck_rates), ("--finetune-data", finetune_data)):
        if given is not None and not mc:
            raise InputError(flag, "applies to the Monte-Carlo chips; give --mc K")
    tune = finetune_setup(design, finetune_data) if finetune_data is not None else None
    if mc and var is None:
        raise InputError("--sigma", f"PDK '{design.manifest['pdk']['name']}' declares no programming sigma of the "
                                    "conductance; give --sigma (relative, for example 0.05)")
    if write_verify and (var is None or "write_verify" not in var):
        raise InputError("--write-verify", f"PDK '{design.manifest['pdk']['name']}' models no write-verify programming")
    modes = []
    if mc:
        has_wv = "write_verify" in var
        modes = (["one_shot"] if write_verify is False or not has_wv else ["write_verify"]) + \
                (["one_shot" if write_verify is not False else "write_verify"] if has_wv else [])
    runs = ["float", "ideal"] + ([engine] if engine != "ideal" else [])
    total = len(runs) + (mc * 5 + min(mc, 8) * (len(SIGMA_CURVE) + len(FAULT_CURVE)) if mc else 0)
    rep: dict = {"design": design.manifest["design"], "samples": int(x.shape[0]), "chip_model": design.chip_model(),
                 "runs": runs}
    ref = design.float_reference(x)
    rep["float_reference"] = design.reference_note
    # Monte Carlo and the sweeps score accuracy with labels, else top-1 agreement with float
    metric = "accuracy" if y is not None else "top1_agreement"
    if (mc or sweep) and y is None and (ref is None or ref[0].reshape(ref[0].shape[0], -1).shape[1] < 2):
        raise InputError("--mc" if mc else "--sweep", "needs --labels, or a class-vector output and an ONNX source "
                                                       "to score top-1 agreement against")
    done = 1
    if y is not None and ref is not None:
        check_labels(labels, y, ref[0].reshape(ref[0].shape[0], -1).shape[1])
    if ref is not None:
        rep["float"] = _metrics(ref, ref, y)
    else:
        rep["runs"] = runs = runs[1:]
    progress("float", done, total)
    traces: dict[str, dict] = {}
    for r in runs:
        if r == "float":
            continue
        tr: dict = {}
        ys = design.run(x, r, trace=tr)
        if r == "ideal":
            ideal_out = ys
        traces[r] = tr
        rep[r] = _metrics(ys, ref, y)
        progress(r, done := done + 1, total)
    for r in traces:
        rep[r]["per_layer"] = _per_layer(traces[r], traces["ideal"])
    if mc:
        rep["mc"], done = _monte_carlo(design, x, ref, y, var, modes, mc, metric, np.random.default_rng(seed),
                                       progress, done, total, tune)
        rep["mc"]["seed"] = seed
    if sweep:
        rep["sweeps"] = _sweep(design, x, ref, y, metric, progress, ideal_out)
    rep["seconds"] = time.perf_counter() - t0
    out = Path(out)
    pngs = _plots(rep, traces)
    tmp = out / f".{REPORT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, data in pngs.items():
        (tmp / name).write_bytes(data)
    shutil.rmtree(out / REPORT_DIR, ignore_errors=True)
    tmp.rename(out / REPORT_DIR)
    write_page(out / "eval.html", _html(rep, pngs))
    write_json_atomic(out / "eval.json", rep)
    return rep
