"""amsc evaluate: what accuracy a compiled network keeps on the simulated chip.

The inputs run through
- ``float``: the source model in onnxruntime (the reference of every other run);
- ``ideal``: the quantized chip with ideal tiles (``amsc run --engine ideal``: the integer datapath
  where it was generated, bit-exact with the RTL);
- the circuit engine, when one is chosen: every crossbar read computed from the emitted netlists,
  ``mna`` (a sparse solve; linear tiles) or ``ngspice`` (sign-off, and nonlinear 1T1R tiles).
Each run reports top-1 agreement with float and the output SNR, accuracy when labels are given,
and per layer the error of its output against the ideal run (``per_layer``).

``--mc K`` draws K Monte-Carlo samples of programming error: every programmed conductance becomes
``G (1 + sigma e)``, ``e`` standard normal (seeded), clipped at 0, and the network runs with those
conductances on the ideal engine (the circuit engines read the emitted netlists, whose values are
the programming targets). The report gives mean and standard deviation over the samples, and an
accuracy-against-sigma curve over a few multiples of sigma.

``--sweep`` recompiles the design's ONNX source (``OUT/source/``, with its calibration inputs) in a
temporary folder with one compile option changed at a time (SWEEPS: ADC bits, weight bits, and the
wire resistance of a ``--parasitics`` mesh, read through the MNA engine) and reports accuracy
against each.

Writes ``OUT/eval.json`` (keys ``float``, ``ideal``, the circuit engine's name, ``mc`` and
``sweeps``), ``OUT/eval.html`` and the plots in ``OUT/eval-report/``.
"""

from __future__ import annotations

import html
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.common import load_npy
from ..verify.report import figure, png_bytes
from .run import Design, agreement

#: Multiples of sigma on the accuracy-against-sigma curve (each point: the --mc samples, at most 8).
SIGMA_CURVE = (0.0, 0.5, 1.0, 2.0, 4.0)
#: ``--sweep``: each compile option, its values, and the engine each recompiled design runs on
#: (wire resistance needs a circuit engine: the mesh is only in the netlists).
SWEEPS = (("adc_bits", (4, 5, 6, 7, 8, 10), "ideal"), ("weight_bits", (2, 3, 4, 5, 6), "ideal"),
          ("wire_r", (0.25, 0.5, 1.0, 2.0, 4.0), "mna"))
REPORT_DIR = "eval-report"


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


def _perturbed(design: Design, sigma: float, rng) -> dict:
    """Every tile's programmed (G+, G-) with a relative Gaussian programming error of ``sigma``."""
    out = {}
    for n in design.ir.nodes_of("xbar_tile"):
        p = design.ir.g.nodes[n]["params"]
        out[n] = tuple(np.clip(g * (1.0 + sigma * rng.standard_normal(g.shape)), 0.0, None) for g in (p["gpos"], p["gneg"]))
    return out


def _sweep(design: Design, x, ref, y, metric: str, progress) -> dict:
    """Accuracy against each SWEEPS option: the source recompiled with that option changed."""
    import dataclasses
    import tempfile

    from ..driver import compile_model
    from ..options import CompileOptions

    m = design.manifest
    src = m["source"].get("file")
    if src is None:
        raise InputError("--sweep", "recompiling needs the design's ONNX source; this design holds none (a YAML graph)")
    opts = {**m["options"], "input_range": tuple(m["options"]["input_range"]), "dump_ir_after": None}
    if "calibration" in m["source"]:
        opts["calibration"] = str(design.out / m["source"]["calibration"])
    base = CompileOptions(**opts)
    res = {}
    with tempfile.TemporaryDirectory(prefix="amsc-sweep-") as tmp:
        for key, values, eng in SWEEPS:
            pts = []
            for v in values:
                change = {key: v, **({"parasitics": True} if key == "wire_r" else {})}
                out = Path(tmp) / f"{key}_{v}"
                compile_model(design.out / src, out, dataclasses.replace(base, **change))
                d = Design(out)
                ys = d.run(x, eng)
                pts.append({"value": v, "engine": eng, metric: _metrics(ys, ref, y)[metric]})
                shutil.rmtree(out, ignore_errors=True)
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
        ax.plot([p["value"] for p in pts], [100 * p[metric] for p in pts], marker="o")
        if key == "wire_r":
            ax.set_xscale("log")
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
    return pngs


def _html(rep: dict, pngs: dict) -> str:
    def pct(v):
        return "—" if v is None else f"{100 * v:.2f} %"

    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{pct(rep[k].get('accuracy'))}</td><td>{pct(rep[k].get('top1_agreement'))}</td>"
        f"<td>{'—' if rep[k].get('snr_db') is None else format(rep[k]['snr_db'], '.1f') + ' dB'}</td></tr>"
        for k in rep["runs"])
    layer_rows = ""
    for k in rep["runs"]:
        for n, r in rep[k].get("per_layer", {}).items():
            if k != "ideal":
                layer_rows += (f"<tr><td>{html.escape(k)}</td><td>{html.escape(n)}</td><td>{100 * r['rms_rel']:.3f} %</td>"
                               f"<td>{r.get('max_codes', r['max_abs']):.3g}</td></tr>")
    mc = rep.get("mc")
    mc_html = ""
    if mc:
        mc_html = (f"<h2>Monte Carlo: {len(mc['samples'])} samples, programming sigma {mc['sigma']:g}</h2>"
                   f"<p>{html.escape(mc['engine'])}: {mc['metric'].replace('_', ' ')} {100 * mc['mean']:.2f} % "
                   f"&plusmn; {100 * mc['std']:.2f} %</p>")
    sweep_html = "".join(
        f"<h2>Sweep of {html.escape(k)}</h2><table><tr><th>value</th><th>engine</th><th>result</th></tr>"
        + "".join(f"<tr><td>{p['value']:g}</td><td>{p['engine']}</td>"
                  f"<td>{pct(p.get('accuracy', p.get('top1_agreement')))}</td></tr>" for p in pts) + "</table>"
        for k, pts in rep.get("sweeps", {}).items())
    imgs = "".join(f"<p><img src='{REPORT_DIR}/{name}' alt='{name}'></p>" for name in sorted(pngs))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>amsc evaluate {html.escape(rep['design'])}"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
            "td:first-child,td:nth-child(2){text-align:left}</style></head><body>"
            f"<h1>{html.escape(rep['design'])}: accuracy on the simulated chip</h1>"
            f"<p>{rep['samples']} inputs; chip model: {html.escape(rep['chip_model'])}; float reference: "
            f"{html.escape(rep['float_reference'])}</p>"
            "<table><tr><th>run</th><th>accuracy</th><th>top-1 agreement</th><th>SNR vs float</th></tr>"
            f"{rows}</table>"
            + (f"<h2>Per layer, against ideal tiles</h2><table><tr><th>run</th><th>layer</th><th>RMS error</th>"
               f"<th>max error [codes]</th></tr>{layer_rows}</table>" if layer_rows else "")
            + mc_html + sweep_html + imgs + "</body></html>\n")


def evaluate_design(out, inputs, labels=None, engine: str = "ideal", samples: int | None = None, mc: int = 0,
                    sigma: float | None = None, seed: int = 0, progress=None, sweep: bool = False) -> dict:
    """``amsc evaluate``; returns the report (also written to OUT/eval.json, eval.html, eval-report/)."""
    from .run import ENGINES
    from ..verify.run import write_json_atomic

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
        y = load_npy(labels, "labels").reshape(-1).astype(np.int64)
        if y.shape[0] != x.shape[0]:
            raise InputError(labels, f"{y.shape[0]} labels for {x.shape[0]} inputs")
    if samples is not None:
        if samples > x.shape[0]:
            raise InputError(inputs, f"holds {x.shape[0]} inputs; --samples {samples} asks for more")
        x, y = x[:samples], (None if y is None else y[:samples])
    if mc and sigma is None:
        raise InputError("--sigma", f"PDK '{design.manifest['pdk']['name']}' declares no programming sigma of the "
                                    "conductance; give --sigma (relative, for example 0.05)")
    runs = ["float", "ideal"] + ([engine] if engine != "ideal" else [])
    total = len(runs) + (mc + mc * len(SIGMA_CURVE) if mc else 0)
    rep: dict = {"design": design.manifest["design"], "samples": int(x.shape[0]), "chip_model": design.chip_model(),
                 "runs": runs}
    ref = design.float_reference(x)
    rep["float_reference"] = (f"onnxruntime on {design.manifest['source']['file']}" if ref is not None
                              else "none (the design holds no ONNX source)")
    # Monte Carlo and the sweeps score accuracy with labels, else top-1 agreement with float
    metric = "accuracy" if y is not None else "top1_agreement"
    if (mc or sweep) and y is None and (ref is None or ref[0].reshape(ref[0].shape[0], -1).shape[1] < 2):
        raise InputError("--mc" if mc else "--sweep", "needs --labels, or a class-vector output and an ONNX source "
                                                       "to score top-1 agreement against")
    done = 1
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
        traces[r] = tr
        rep[r] = _metrics(ys, ref, y)
        progress(r, done := done + 1, total)
    for r in traces:
        rep[r]["per_layer"] = _per_layer(traces[r], traces["ideal"])
    if mc:
        rng = np.random.default_rng(seed)
        samp = []
        for _ in range(mc):
            samp.append(_metrics(design.run(x, "ideal", conductances=_perturbed(design, sigma, rng)), ref, y))
            progress("monte carlo", done := done + 1, total)
        vals = np.array([s[metric] for s in samp])
        curve = []
        for m in SIGMA_CURVE:
            pts = []
            for _ in range(min(mc, 8)):
                pts.append(_metrics(design.run(x, "ideal", conductances=_perturbed(design, m * sigma, rng)), ref, y)[metric])
                progress("sigma curve", done := done + 1, total)
            curve.append({"sigma": m * sigma, "mean": float(np.mean(pts)), "std": float(np.std(pts)), "samples": len(pts)})
        rep["mc"] = {"engine": "ideal tiles with perturbed conductances", "samples": samp, "sigma": sigma,
                     "seed": seed, "metric": metric, "mean": float(vals.mean()), "std": float(vals.std()),
                     "sigma_curve": curve}
    if sweep:
        rep["sweeps"] = _sweep(design, x, ref, y, metric, progress)
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
    (out / ".eval.html.tmp").write_text(_html(rep, pngs))
    (out / ".eval.html.tmp").replace(out / "eval.html")
    write_json_atomic(out / "eval.json", rep)
    return rep
