"""``amsc explore``: the design space of one model, measured on the designs amsc would emit.

Every point of a grid of compile options (``--grid KEY=V1,V2 ...``, each key a compile option of
``amsc compile`` named without its dashes) is
compiled, in parallel on the local process pool (``--jobs``) or a Dask cluster (``--scheduler``:
its workers read the model and the inputs and write the points' designs by path, so they share this
file system), and measured as the other commands measure a design:

- quality: accuracy on the labels with ideal tiles (``amsc evaluate``'s ``ideal`` run), and the
  output SNR and top-1 agreement against the float model in onnxruntime;
- cost: energy per inference, area, latency, TOPS/W and TOPS/mm^2 from ``amsc report`` (the
  crossbar energy measured in the circuit simulator, the digital area from yosys unless
  ``--no-synth``). Throughput is 1 / latency: the datapath runs one input at a time.

A point the compiler refuses (too many tiles, a width the PDK cannot give) is kept with its error.
The Pareto flag marks the points no other point beats in quality (accuracy with labels, else SNR),
TOPS/W and TOPS/mm^2 at once; ``fronts`` lists the two 2-D fronts that explore.html plots.

Writes DIR/explore.json, DIR/explore.html and DIR/explore-report/*.png (DIR replaced only if it
holds an earlier explore), and with ``--keep-designs`` every point's design under DIR/points/.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.common import NPY_ERRORS

#: the grid when none is given: the tile, the converters' resolution and the ADC sharing
DEFAULT_GRID = (("tile", ("64x64", "128x128")), ("adc-bits", ("6", "8")), ("adc-share", ("1", "8", "32")))
#: compile options a grid cannot vary: where the design goes, and one chip's programming
FIXED = ("out", "dump-ir-after", "chip-state", "finetune-data", "help")
#: points at most (each is a compile and a report)
MAX_POINTS = 1024
REPORT_DIR = "explore-report"
LABELS = {"tops_per_w": "TOPS/W", "tops_per_mm2": "TOPS/mm$^2$", "accuracy": "accuracy (ideal tiles)",
          "snr_db": "SNR against float [dB]"}
#: the quality and cost figures of a point, in explore.json and the HTML table
FIGURES = ("accuracy", "snr_db", "top1_agreement", "energy_per_inference_j", "area_mm2", "latency_s",
           "throughput_per_s", "tops_per_w", "tops_per_mm2", "digital_share_of_latency", "adcs", "adc_utilization")


def parse_grid(items: list[str] | None) -> list[tuple[str, list[str]]]:
    """``KEY=V1,V2`` items into ``[(key, [values])]`` in the order given (the default grid without
    items); a key twice, an empty value or a missing ``=`` is refused in one line."""
    if not items:
        return [(k, list(v)) for k, v in DEFAULT_GRID]
    grid: list[tuple[str, list[str]]] = []
    for it in items:
        key, eq, vals = it.partition("=")
        key = key.strip().lstrip("-")
        values = [v.strip() for v in vals.split(",")]
        if not eq or not key or any(not v for v in values):
            raise InputError("--grid", f"'{it}' is not KEY=V1,V2,... (for example tile=64x64,128x128)")
        if key in (k for k, _ in grid):
            raise InputError("--grid", f"key '{key}' is given twice")
        if len(set(values)) != len(values):
            raise InputError("--grid", f"'{it}' repeats a value")
        grid.append((key, values))
    return grid


def points(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last key varying fastest."""
    n = int(np.prod([len(v) for _, v in grid]))
    if n > MAX_POINTS:
        raise InputError("--grid", f"{n} points; explore takes at most {MAX_POINTS}")
    out = [{}]
    for key, values in grid:
        out = [{**p, key: v} for p in out for v in values]
    return out


def pareto(vals: np.ndarray) -> np.ndarray:
    """Rows of ``vals`` [points, objectives] (all maximized; NaN rows excluded) that no other row
    beats in every objective and strictly in one."""
    ok = ~np.isnan(vals).any(axis=1)
    flags = np.zeros(len(vals), bool)
    for i in np.flatnonzero(ok):
        other = vals[ok]
        flags[i] = not np.any(np.all(other >= vals[i], axis=1) & np.any(other > vals[i], axis=1))
    return flags


def explore_point(task: dict) -> dict:
    """Compile one point and measure it (runs in a worker: everything it needs is in ``task``)."""
    from ..driver import compile_model
    from ..options import CompileOptions
    from .evaluate import _metrics
    from .ppa import report_design
    from .run import Design

    out = Path(task["dir"])
    opts = dict(task["options"])
    opts["input_range"] = tuple(opts["input_range"])
    try:
        m = compile_model(task["model"], out, CompileOptions(**opts))
        design = Design(out)
        inputs = task["inputs"] or (out / m["source"]["calibration"] if "calibration" in m["source"] else None)
        fig: dict = {"tiles": len(m["tiles"])}
        if inputs is not None:
            x = design.load_inputs(inputs)[:task["samples"]]
            y = None if task["labels"] is None else np.load(task["labels"])[:x.shape[0]]
            fig.update(_metrics(design.run(x, "ideal"), design.float_reference(x), y))
        engine = "mna" if all(t["cell"]["type"] == "1r" for t in m["tiles"]) else "ngspice"
        rep = report_design(out, task["inputs"], task["samples"], engine, synth=task["synth"])
        fig.update({k: rep[k] for k in ("energy_per_inference_j", "area_mm2", "latency_s", "throughput_per_s",
                                        "tops_per_w", "tops_per_mm2")},
                   digital_share_of_latency=rep["latency_breakdown_s"]["digital_s"] / rep["latency_s"],
                   # the ADCs and the share of the time they convert: what ADC sharing and lanes trade
                   adcs=rep["periphery"]["adcs"], adc_utilization=rep["periphery"]["adc_utilization"],
                   digital_area_synthesized=rep["digital"]["synthesis"]["synthesized"],
                   area_by=rep["dominant"]["area"], energy_by=rep["dominant"]["energy"])
        return fig
    finally:
        if not task["keep"]:
            shutil.rmtree(out, ignore_errors=True)


def explore(model: Path, dest: Path, point_options: list[dict], grid: list[tuple[str, list[str]]],
            inputs=None, labels=None, samples: int = 16, synth: bool = True, keep: bool = False,
            jobs: int = 1, scheduler: str | None = None, timeout: float = 3600.0, progress=None) -> dict:
    """Compile and measure every point (``point_options[k]``: ``grid``, its grid values; ``compile``,
    its CompileOptions as JSON), then write DIR (see the module). Returns the report."""
    from ..sim.executor import dask_connect, run_dask, run_local

    progress = progress or (lambda *a: None)
    model, dest = Path(model).resolve(), Path(dest)
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / "explore.json").is_file())):
        raise InputError(dest, "exists and is not an earlier 'amsc explore' output (no explore.json); choose a new "
                               "folder or remove it")
    if labels is not None and inputs is None:
        raise InputError("--labels", "score the inputs they label; give --inputs X.npy too")
    if inputs is not None:
        try:
            n = np.load(inputs, mmap_mode="r", allow_pickle=False).shape[0]
        except (*NPY_ERRORS, IndexError, AttributeError):
            raise InputError(inputs, "is not a readable .npy array of inputs") from None
        if samples > n:
            raise InputError(inputs, f"holds {n} inputs; --samples {samples} asks for more")
        if labels is not None:
            from ..frontend.common import load_labels

            load_labels(labels, n)
    tmp = dest.parent / f".{dest.name}.explore-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "points").mkdir(parents=True)
    try:
        tasks = [{"model": str(model), "dir": str((tmp / "points" / f"p{k:03d}").resolve()),
                  "options": o["compile"],
                  "inputs": None if inputs is None else str(Path(inputs).resolve()),
                  "labels": None if labels is None else str(Path(labels).resolve()),
                  "samples": samples, "synth": synth, "keep": keep} for k, o in enumerate(point_options)]
        done = [0]

        def on_done(k, res):
            done[0] += 1
            progress("points", done[0], len(tasks))

        progress("points", 0, len(tasks))
        t0 = time.perf_counter()
        if scheduler:
            results = run_dask(explore_point, tasks, dask_connect(scheduler), timeout, on_done)
        else:
            results = run_local(explore_point, tasks, jobs, timeout, on_done)
        seconds = time.perf_counter() - t0
        if all(status != "ok" for status, _ in results):
            raise InputError(model, f"no point of the grid compiled and measured; point 0: {results[0][1]}")
        rep = _report(grid, point_options, results, labels is not None)
        _write(tmp, rep)
        if not keep:
            shutil.rmtree(tmp / "points", ignore_errors=True)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rep["seconds"] = seconds
    return rep


def _report(grid, point_options, results, labelled: bool) -> dict:
    pts = []
    for k, (o, (status, res)) in enumerate(zip(point_options, results)):
        p = {"index": k, "options": {key: o["grid"][key] for key, _ in grid}, "compile_options": o["compile"]}
        if status == "ok":
            p.update(res)
        else:
            p["error"] = res
        pts.append(p)
    quality = "accuracy" if labelled else "snr_db"

    def col(key):
        return np.array([np.nan if p.get(key) is None else float(p[key]) for p in pts])

    q, w, a = col(quality), col("tops_per_w"), col("tops_per_mm2")
    flags = pareto(np.stack([q, w, a], axis=1))
    fronts = {f"{quality}_vs_tops_per_w": np.flatnonzero(pareto(np.stack([q, w], axis=1))).tolist(),
              "tops_per_w_vs_tops_per_mm2": np.flatnonzero(pareto(np.stack([w, a], axis=1))).tolist()}
    for p, f in zip(pts, flags):
        p["pareto"] = bool(f)
    return {"grid": {k: v for k, v in grid}, "quality": quality, "points": pts, "fronts": fronts,
            "failed": sum("error" in p for p in pts),
            "throughput_note": "inputs per second in a steady stream: 1 / the slowest pipeline stage's period "
                               "(its clocks and its layers' reads); 1 / latency at pipeline=1"}


def _plots(rep: dict) -> dict[str, bytes]:
    from ..verify.report import figure, png_bytes

    pts = [p for p in rep["points"] if "error" not in p]
    q = rep["quality"]
    out = {}
    for name, (kx, ky), front in ((f"{q}_vs_tops_per_w.png", ("tops_per_w", q), rep["fronts"][f"{q}_vs_tops_per_w"]),
                                  ("tops_per_w_vs_tops_per_mm2.png", ("tops_per_mm2", "tops_per_w"),
                                   rep["fronts"]["tops_per_w_vs_tops_per_mm2"])):
        xs = [p.get(kx) for p in pts]
        ys = [p.get(ky) for p in pts]
        if not pts or any(v is None for v in xs + ys):
            continue
        fig = figure(5.2, 3.6)
        ax = fig.add_axes((0.17, 0.14, 0.79, 0.76))
        ax.scatter(xs, ys, s=18, color="#99aabb", label="points")
        fp = sorted((p for p in pts if p["index"] in front), key=lambda p: p[kx])
        ax.plot([p[kx] for p in fp], [p[ky] for p in fp], "o-", color="#cc3311", ms=5, label="Pareto front")
        for p in fp:
            ax.annotate(str(p["index"]), (p[kx], p[ky]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        from matplotlib.ticker import NullFormatter

        for axis, vs, key in ((ax.xaxis, xs, kx), (ax.yaxis, ys, ky)):
            if key != q and min(vs) > 0 and max(vs) > 10 * min(vs):     # a cost spanning decades
                (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
                axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(LABELS[kx])
        ax.set_ylabel(LABELS[ky])
        ax.legend(fontsize=7)
        out[name] = png_bytes(fig)
    return out


def _write(folder: Path, rep: dict) -> None:
    from ..verify.report import render_page

    from ..design import write_json_atomic

    pngs = _plots(rep)
    (folder / REPORT_DIR).mkdir()
    for name, data in pngs.items():
        (folder / REPORT_DIR / name).write_bytes(data)

    def fmt(v, key):
        if v is None:
            return "—"
        if key in ("accuracy", "top1_agreement"):
            return f"{100 * v:.2f} %"
        if key in ("digital_share_of_latency", "adc_utilization"):
            return f"{100 * v:.1f} %"
        if key == "adcs":
            return str(v)
        if key == "snr_db":
            return f"{v:.1f} dB"
        return f"{v:.3g}"

    rows = [{"p": p, "cells": [fmt(p.get(k), k) for k in FIGURES]} for p in rep["points"]]
    text = render_page(Path(__file__).parent / "templates", "explore.html.j2", rep=rep, rows=rows, figures=FIGURES,
                       keys=list(rep["grid"]), plots=[f"{REPORT_DIR}/{n}" for n in sorted(pngs)])
    (folder / "explore.html").write_text(text)
    write_json_atomic(folder / "explore.json", rep)
