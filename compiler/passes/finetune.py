"""finetune: what one programmed chip can still change cheaply, fitted to a few labelled inputs.

After a chip is placed (``fault_map``), programmed (``program``) and its columns calibrated
(``calibrate``), its remaining error is what the placement could not hide: weights on stuck cells
and the read noise of the rest. Two things on the chip are cheap to change afterwards: the digital
requantizer's per-column scale and bias (registers on the scan chain, ``backend/verilog.py``) and
the weights of a small final layer (a few hundred cells rewritten). Retraining the whole network
for the chip is out of scope.

With ``--finetune-data X.npy Y.npy`` the pass evaluates the chip's network (its measured
conductances, as the ``ideal`` engine does) on X up to the final layer's crossbar, and fits, by
L-BFGS-B (scipy) on the mean softmax cross-entropy of the labels plus ``RIDGE`` times the mean
squared change of the weights (in units of the pair's range), of the scales and of the biases (in
units of the logits' spread), so that a few hundred inputs do not overfit:

- the final layer's level differences ``D`` [K, M] (targets of its pairs), each bounded to what its
  pair reaches on this chip (a pair with a stuck cell reaches one sign of differences, a pair with
  both stuck one value, ``fault_map.pair_difference``);
- a per-column scale ``alpha`` in [1/2, 2] and bias ``beta`` of its requantizer.

``D`` is then rounded to levels and written to the pairs the fit moved by at least half a level from
what they hold (:func:`moved_pairs`; a stuck cell's partner keeps the difference,
``fault_map.pair_levels``) with the PDK's programming error drawn for the rewritten cells, and
``alpha``/``beta`` fold into the layer's ``w_scale``/``b``. The RTL does not change: the new levels
and constants are scan contents. The cost (parameters, iterations, cells rewritten) and the loss and
accuracy on X before and after go into the manifest's ``chip.finetune`` (no times: the design is
byte-identical from the same inputs; ``amsc program`` prints how long it took).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: weight of the mean squared change of the parameters (see the module) against the loss: at 1 and
#: 10, 300 training digits overfit a cnn_digits chip with 36 % stuck cells (held-out accuracy -1.3
#: and -0.2 points); at 100 it keeps the held-out accuracy (docs/variability.md)
RIDGE = 100.0
#: L-BFGS-B iterations
MAX_ITER = 300
#: fewest labelled inputs accepted, and the most used
MIN_SAMPLES, MAX_SAMPLES = 20, 20000
_OPT = "--finetune-data"


def final_layer(ir) -> str:
    """The accumulator whose value is the network's output (through a softmax at most); refused
    in one line otherwise."""
    (out,) = ir.nodes_of("output")
    n = ir.inputs(out)[0]
    if ir.g.nodes[n]["op"] == "softmax":
        n = ir.inputs(n)[0]
    d = ir.g.nodes[n]
    if d["op"] != "accum":
        raise InputError(_OPT, f"adapts a final crossbar layer, and the network's output comes from '{d['origin']}' "
                               f"({d['op']})")
    if d["attrs"].get("recurrent") or d["attrs"]["activation"]["kind"] != "none":
        raise InputError(_OPT, f"adapts a final layer that gives logits (no activation), and '{d['origin']}' has "
                               f"{'a recurrence' if d['attrs'].get('recurrent') else d['attrs']['activation']['kind']}")
    return n


def load_labelled(paths, ir, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuning inputs and labels, validated: labels are integers in [0, classes), one per input."""
    from ..frontend.common import NPY_ERRORS, load_samples

    xp, yp = paths
    (inp,) = ir.nodes_of("input")
    x = load_samples(xp, ir.g.nodes[inp]["shape"], "fine-tuning inputs", flat_ok=True)
    try:
        y = np.load(yp, allow_pickle=False)
    except NPY_ERRORS as e:
        raise InputError(yp, f"is not a readable .npy of labels ({e.__class__.__name__})") from None
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InputError(yp, f"expected {x.shape[0]} labels (one per input of {xp}), got shape {list(y.shape)}")
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= classes)):
        raise InputError(yp, f"expected integer labels in [0, {classes}) (the final layer's columns)")
    if not MIN_SAMPLES <= len(y) <= MAX_SAMPLES:
        raise InputError(xp, f"holds {len(y)} inputs; fine-tuning takes {MIN_SAMPLES} to {MAX_SAMPLES}")
    return x, y.astype(np.int64)


def _ce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of logits ``z`` [N, M] and its gradient."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean())
    p[np.arange(n), y] -= 1.0
    return loss, p / n


def fit_final(h: np.ndarray, y: np.ndarray, d0: np.ndarray, lo: np.ndarray, hi: np.ndarray, unit: np.ndarray,
              b0: np.ndarray, top: float) -> dict:
    """Fit level differences ``D`` (start ``d0`` [K, M], bounds ``lo``/``hi``), scales ``alpha`` and
    biases ``beta`` of logits ``(h @ D) * (alpha * unit) + beta`` to labels ``y`` (see the module)."""
    from scipy.optimize import minimize

    K, M = d0.shape

    def split(v):
        return v[:K * M].reshape(K, M), v[K * M:K * M + M], v[K * M + M:]

    z0 = (h @ d0) * unit + b0
    sz2 = float(z0.var()) or 1.0      # the logits' spread: the bias change is measured against it

    def f(v):
        D, a, b = split(v)
        hd = h @ D
        z = hd * (a * unit) + b
        loss, g = _ce(z, y)
        dd, da, db = D - d0, a - 1.0, b - b0
        reg = RIDGE * (float((dd * dd).mean()) / top ** 2 + float((da * da).mean()) + float((db * db).mean()) / sz2)
        gD = h.T @ (g * (a * unit)) + 2 * RIDGE * dd / (dd.size * top ** 2)
        ga = (g * hd * unit).sum(axis=0) + 2 * RIDGE * da / M
        gb = g.sum(axis=0) + 2 * RIDGE * db / (M * sz2)
        return loss + reg, np.concatenate([gD.ravel(), ga, gb])

    v0 = np.concatenate([d0.ravel(), np.ones(M), b0])
    bounds = list(zip(lo.ravel(), hi.ravel())) + [(0.5, 2.0)] * M + [(None, None)] * M
    r = minimize(f, v0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": MAX_ITER})
    D, a, b = split(r.x)
    return {"D": D, "alpha": a, "beta": b, "iterations": int(r.nit)}


def pair_reach(sp: np.ndarray, sn: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest pair difference (levels) each pair stuck at ``sp``/``sn`` reaches."""
    from .fault_map import pair_difference

    return pair_difference(-top, sp, sn, top), pair_difference(top, sp, sn, top)


def moved_pairs(d_fit: np.ndarray, d_now: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fitted differences as levels a pair can hold (rounded, within ``lo``/``hi``), and which
    pairs to rewrite: those the fit moved at least half a level from what they hold now (``d_now``,
    measured). A pair left alone keeps its programmed cells: rewriting it to its rounded measurement
    would only draw a new programming error."""
    d = np.clip(np.rint(d_fit), np.ceil(lo - 1e-9), np.floor(hi + 1e-9))
    return d, np.abs(d_fit - d_now) >= 0.5


def difference_levels(d: np.ndarray, sp: np.ndarray, sn: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    """The levels (G+, G-) that write the level differences ``d`` on pairs stuck at ``sp``/``sn``
    (``fault_map.pair_levels``: a stuck cell's partner keeps the difference), rounded into [0, top]."""
    from .fault_map import pair_levels

    lp, ln = pair_levels(np.maximum(d, 0.0), np.maximum(-d, 0.0), sp, sn, top)
    return np.clip(np.rint(lp), 0, top), np.clip(np.rint(ln), 0, top)


def fit_layer(h: np.ndarray, y: np.ndarray, d0: np.ndarray, lo: np.ndarray, hi: np.ndarray, unit: np.ndarray,
              b0: np.ndarray, top: float, gain: np.ndarray | None = None) -> dict:
    """A chip's final layer fitted to labels ``y`` (logits ``(h @ D) * (alpha * unit) + beta``, ``D``
    from ``d0``, within ``lo``/``hi``: :func:`fit_final`), then made programmable: ``D`` rounded to
    levels of the pairs the fit moved (:func:`moved_pairs`; ``D`` is ``gain`` times the pair's level
    difference, per column, where a calibration scales the reads), the scale and bias refitted to
    the rounded ``D``. If the rounded fit does not lower the loss on the labelled inputs, nothing
    changes. Returns ``D``, ``moved``, ``alpha``, ``beta``, the iterations and the loss and accuracy
    before and after."""
    g = np.ones(d0.shape[1]) if gain is None else gain
    z0 = (h @ d0) * unit + b0
    loss0, _ = _ce(z0, y)
    fit = fit_final(h, y, d0, lo, hi, unit, b0, top)
    d, moved = moved_pairs(fit["D"] / g, d0 / g, lo / g, hi / g)
    d = np.where(moved, d * g, d0)
    again = fit_final(h, y, d, d, d, unit, b0, top)             # the scale and bias, to the rounded levels
    z1 = (h @ d) * (again["alpha"] * unit) + again["beta"]
    loss1, _ = _ce(z1, y)
    res = {"D": d, "moved": moved, "alpha": again["alpha"], "beta": again["beta"]}
    if loss1 > loss0:           # rounding undid the fit: the chip stays as it is
        res, loss1, z1 = {"D": d0, "moved": np.zeros(d0.shape, bool), "alpha": np.ones(len(b0)), "beta": b0}, loss0, z0
    return {**res, "iterations": fit["iterations"] + again["iterations"], "loss_before": loss0, "loss_after": loss1,
            "accuracy_before": float((z0.argmax(axis=1) == y).mean()),
            "accuracy_after": float((z1.argmax(axis=1) == y).mean())}


def finetune(ir, options, pdk):
    """The pass: with ``options.finetune_data`` (a chip design), the final layer fitted to the labelled
    inputs (see the module). Without it the IR is unchanged."""
    if options.finetune_data is None:
        return ir
    if options.chip_state is None:
        raise InputError(_OPT, "fits one programmed chip; give its --chip-state (or use 'amsc program')")
    from ..ir.interp import run_ir
    from ..pdk.devices import program as program_devices
    from .fault_map import stuck_levels

    n = final_layer(ir)
    d = ir.g.nodes[n]
    a, p = d["attrs"], d["params"]
    tiles = ir.inputs(n)
    M = len(p["b"])
    x, y = load_labelled(options.finetune_data, ir, M)
    ir = ir.copy()
    top = float(pdk.levels - 1)
    step = pdk.g_step
    K = max(ir.g.nodes[t]["attrs"]["row1"] for t in tiles)
    seen = {}

    def observe(name, xs):
        if name in tiles:
            seen[name] = xs
        q = ir.g.nodes[name]["params"]
        return xs @ (q["gpos"] - q["gneg"])

    (inp,) = ir.nodes_of("input")
    run_ir(ir, {inp: x}, tile_fn=observe)
    if any(seen[t].shape[0] != len(y) for t in tiles):
        raise InputError(_OPT, f"adapts a dense final layer (one read per input), and '{d['origin']}' reads its "
                               "crossbar at several positions")
    h = np.zeros((len(y), K))
    D0, lo, hi = (np.zeros((K, M)) for _ in range(3))
    for t in tiles:
        ta, tp = ir.g.nodes[t]["attrs"], ir.g.nodes[t]["params"]
        r0, r1, c0, c1 = ta["row0"], ta["row1"], ta["col0"], ta["col1"]
        h[:, r0:r1] = seen[t]
        D0[r0:r1, c0:c1] = (tp["gpos"] - tp["gneg"]) / step       # what the chip holds now, in levels
        sp, sn = (np.clip(v, 0.0, top) for v in stuck_levels(tp, pdk.g_min, step))
        lo[r0:r1, c0:c1], hi[r0:r1, c0:c1] = pair_reach(sp, sn, top)
    fit = fit_layer(h, y, D0, lo, hi, p["w_scale"] * step, p["b"], top)
    D, moved = fit["D"], fit["moved"]
    changed = 0
    for k, t in enumerate(ir.nodes_of("xbar_tile")):
        if t not in tiles:
            continue
        ta, tp = ir.g.nodes[t]["attrs"], ir.g.nodes[t]["params"]
        Dt = D[ta["row0"]:ta["row1"], ta["col0"]:ta["col1"]]
        mv = moved[ta["row0"]:ta["row1"], ta["col0"]:ta["col1"]]
        sp, sn = (np.clip(v, 0.0, top) for v in stuck_levels(tp, pdk.g_min, step))
        lp, ln = difference_levels(Dt, sp, sn, top)
        lpos = np.where(mv, lp, tp["lpos"]).astype(tp["lpos"].dtype)
        lneg = np.where(mv, ln, tp["lneg"]).astype(tp["lneg"].dtype)
        new = (lpos != tp["lpos"]) | (lneg != tp["lneg"])
        changed += int((lpos != tp["lpos"]).sum() + (lneg != tp["lneg"]).sum())
        gp, gn = pdk.g_min + lpos * step, pdk.g_min + lneg * step
        if pdk.cell["type"] == "1t1r" and pdk.cell["rram"]["sigma_gap_nm"] != 0:
            rng = np.random.default_rng(np.random.SeedSequence([options.seed, k, 0xF17E]))
            gp, gn = program_devices(gp, pdk.cell["rram"], rng), program_devices(gn, pdk.cell["rram"], rng)
        stuck = tp["stuck"]
        # rewritten pairs get their new conductances; a pair left alone keeps what it was programmed to
        gpos = np.where(stuck[0] != 0, tp["gpos"], np.where(new, gp, tp["gpos"]))
        gneg = np.where(stuck[1] != 0, tp["gneg"], np.where(new, gn, tp["gneg"]))
        ir.set(t, params={**tp, "lpos": lpos, "lneg": lneg, "gpos": gpos, "gneg": gneg})
    ir.set(n, params={**p, "w_scale": p["w_scale"] * fit["alpha"], "b": fit["beta"]})
    ir.g.graph["finetune"] = {
        "layer": d["origin"], "samples": int(len(y)), "parameters": int(D.size + 2 * M),
        "iterations": fit["iterations"], "cells_rewritten": changed,
        **{k: fit[k] for k in ("loss_before", "loss_after", "accuracy_before", "accuracy_after")}}
    return ir

