"""Verification reports: OUT/verify.html with one error histogram per block, and the terminal
summary table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPORT_DIR = "verify-report"
#: this stage's report page templates
TEMPLATES = Path(__file__).parent / "templates"


def figure(w: float, h: float):
    """A matplotlib figure on the Agg canvas (no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG, without the software stamp (the same plot gives the same bytes)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render_page(templates: Path, name: str, **context) -> str:
    """An HTML report page from the Jinja template ``name`` in a stage's ``templates`` folder
    (autoescaped; an undefined name is an error, not an empty string)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(name).render(**context)


def write_page(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary sibling, so a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def histogram_png(name: str, err_lsb, tol_lsb: float) -> bytes:
    """A PNG histogram of one block's output errors in ADC LSBs (rendered in the worker)."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(err_lsb, dtype=float), bins=40)
    fig = figure(5.0, 2.8)
    ax = fig.add_axes((0.12, 0.2, 0.84, 0.68))
    ax.stairs(counts, edges, fill=True, color="#4477aa")
    for x in (-tol_lsb, tol_lsb):
        ax.axvline(x, color="#cc3311", linestyle="--", linewidth=1)
    ax.set_xlabel("output error [ADC LSB]  (dashed: pass/fail threshold)")
    ax.set_ylabel("outputs")
    ax.set_title(name, fontsize=10)
    return png_bytes(fig)


def readout_png(ro: dict, wave: dict) -> bytes:
    """The shared-ADC readout's transient: the ADC's differential input, and each conversion's
    expected value (a * the input held) at its sampling instant."""
    fig = figure(7.0, 3.0)
    ax = fig.add_axes((0.1, 0.18, 0.87, 0.7))
    ax.plot(wave["t"] * 1e9, wave["adc"], color="#4477aa", lw=0.8, label="V(adp) - V(adn), ngspice")
    ax.plot(wave["samples_t"].ravel() * 1e9, wave["expected"].ravel(), "o", ms=3, mfc="none", color="#cc3311",
            label="a * V(in_k) at each sampling instant")
    ax.set_xlabel("time [ns]")
    ax.set_ylabel("ADC input [V]")
    ax.set_title(f"{ro['subckt']}: {ro['share']} outputs per ADC, max error {ro['max_err_lsb']:.3f} LSB", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return png_bytes(fig)


def _fmt(x, spec=".3e") -> str:
    return "—" if x is None else format(x, spec)


#: Above this many blocks the reports give one row per layer, and block rows only for failures.
DETAIL_MAX = 200


def by_layer(blocks: list[dict]) -> list[dict]:
    """Per layer: blocks, passed, errors, the worst error relative to its tolerance, least within-LSB share."""
    rows: dict[str, dict] = {}
    for b in blocks:
        r = rows.setdefault(b.get("layer", "?"), {"layer": b.get("layer", "?"), "blocks": 0, "passed": 0, "errors": 0,
                                                    "worst_err_over_tol": None, "min_within_lsb": None, "seconds": 0.0})
        r["blocks"] += 1
        r["passed"] += bool(b["passed"])
        r["errors"] += bool(b["error"])
        r["seconds"] += b["seconds"] or 0.0
        if b["max_abs_err"] is not None and b["tolerance"]:
            q = b["max_abs_err"] / b["tolerance"]
            r["worst_err_over_tol"] = q if r["worst_err_over_tol"] is None else max(r["worst_err_over_tol"], q)
        if b.get("within_lsb") is not None:
            w = b["within_lsb"]
            r["min_within_lsb"] = w if r["min_within_lsb"] is None else min(r["min_within_lsb"], w)
    return list(rows.values())


def _within(w) -> str:
    return "—" if w is None else f"{100 * w:.1f} %"


def write_html(out: Path, report: dict, pngs: dict[str, bytes]) -> Path:
    """OUT/verify.html of a network design (templates/verify_network.html.j2) and its pictures in
    OUT/verify-report/: every block's error histogram (above DETAIL_MAX blocks, the failures' only)
    and the shared-ADC readout's transient."""
    d = out / REPORT_DIR
    tmp = out / f".{REPORT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    detail = len(report["blocks"]) <= DETAIL_MAX
    rows = []
    for b in report["blocks"]:
        if not detail and b["passed"]:
            continue
        png = None
        if pngs.get(b["name"]):
            png = f"{b['name']}.png"
            (tmp / png).write_bytes(pngs[b["name"]])
        rows.append({**b, "png": png, "rms_err": b.get("rms_err"), "within_lsb": b.get("within_lsb"),
                     "cached": b.get("cached"), "status": "ERROR" if b["error"] else ("pass" if b["passed"] else "FAIL")})
    ro = report.get("readout")
    if ro is not None:
        (tmp / "readout.png").write_bytes(pngs["readout"])
    page = render_page(TEMPLATES, "verify_network.html.j2", rep=report, rows=rows, detail=detail,
                       layers=by_layer(report["blocks"]), sample=report.get("sample"), ro=ro,
                       report_dir=REPORT_DIR, fmt=_fmt, within=_within)
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)
    write_page(out / "verify.html", page)
    return out / "verify.html"


def _dynamics_table(report: dict, Table):
    """A dynamics design's states; above DETAIL_MAX of them, one summary row and the failures only."""
    blocks = report["blocks"]
    many = len(blocks) > DETAIL_MAX
    t = Table(title=f"amsc verify: {report['design']} ({report['engine']})"
              + (f", {len(blocks)} states: the worst and every failure" if many else ""))
    for col in ("state", "status", "max err / FS", "RMS err / FS", "settling time"):
        t.add_column(col, justify="left" if col in ("state", "status") else "right")
    rows = blocks
    if many:
        worst = max(blocks, key=lambda b: b["max_err_over_fs"])
        rows = [worst] + [b for b in blocks if not b["passed"] and b is not worst]
    for b in rows:
        t.add_row(b["name"], "[green]pass[/]" if b["passed"] else "[red]FAIL[/]", _fmt(b["max_err_over_fs"]),
                  _fmt(b["rms_err_over_fs"]), _fmt(b["settle_time"], ".4g"))
    return t


def summary_table(report: dict):
    from rich.table import Table

    if report.get("kind") == "dynamics":    # states against solve_ivp, in fractions of full scale
        return _dynamics_table(report, Table)
    if len(report["blocks"]) > DETAIL_MAX:
        t = Table(title=f"amsc verify: {report['design']} ({report['engine']}), per layer")
        for col in ("layer", "passed", "errors", "worst err/tol", "least <=1 LSB", "seconds"):
            t.add_column(col, justify="left" if col == "layer" else "right")
        for r in by_layer(report["blocks"]):
            ok = r["passed"] == r["blocks"]
            t.add_row(str(r["layer"]), f"[{'green' if ok else 'red'}]{r['passed']}/{r['blocks']}[/]", str(r["errors"]),
                      _fmt(r["worst_err_over_tol"], ".3f"),
                      _within(r["min_within_lsb"]), f"{r['seconds']:.1f}")
        return t
    t = Table(title=f"amsc verify: {report['design']} ({report['engine']})")
    for col in ("block", "status", "max err [A]", "RMS err [A]", "tolerance [A]", "<=1 LSB", "seconds", "cached"):
        t.add_column(col, justify="left" if col in ("block", "status") else "right")
    for b in report["blocks"]:
        status = "[red]ERROR[/]" if b["error"] else ("[green]pass[/]" if b["passed"] else "[red]FAIL[/]")
        within = "—" if b.get("within_lsb") is None else f"{100 * b['within_lsb']:.1f} %"
        t.add_row(b["name"], status, _fmt(b["max_abs_err"]), _fmt(b.get("rms_err")), _fmt(b["tolerance"]),
                  within, _fmt(b["seconds"], ".2f"), "yes" if b.get("cached") else "no")
    return t
