"""ngspice through PySpice's shared-library interface. The only module that imports PySpice.

Shared-mode ngspice is not re-entrant: use one :class:`NgspiceSession` per process.

Batching (measured on a 128x128 tile with a 1-ohm wire mesh, 33k nodes, KLU, 2-core machine):
one ``alter`` + ``op`` per vector costs 0.30 s a vector, a transient with piecewise-constant
sources 0.47 s a vector (breakpoints add time points), and one DC sweep 0.09 s a vector.
``sweep`` therefore drives every input with a B source ``V = pwl(V(sweep), 0, v0, 1, v1, ...)``
and runs a single ``.dc`` over the integer index, one vector per point. The PWL is evaluated exactly
at its own knots, so each input takes exactly its vector's value.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import SimulationError, ToolError

INSTALL_HINT = ("install ngspice 46 with its shared library: run 'make setup' (on Debian: apt-get install "
                "-t bookworm-backports ngspice libngspice0 libngspice0-dev)")

# ngspice messages that mean the deck was not read or solved as written
_FATAL = re.compile(r"(error|not a valid|ignored|unknown|could not|can't find|cannot|singular|"
                    r"timestep too small|no convergence|failed|not found)", re.I)
_CONTROL = re.compile(r"^\s*\.control\b", re.I | re.M)

#: One ngspice per process, and one caller at a time (Dask workers may run tasks in threads).
_LOCK = threading.Lock()
_SESSION = None


def session() -> "NgspiceSession":
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = NgspiceSession()
        return _SESSION


class NgspiceSession:
    name = "ngspice"

    def __init__(self):
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported Ngspice version 46"
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared

            self.ng = NgSpiceShared.new_instance()
        except ImportError as e:
            raise ToolError("PySpice", f"cannot import PySpice ({e}); run 'make setup'") from None
        except OSError as e:
            raise ToolError("libngspice", f"cannot load the ngspice shared library ({e}); {INSTALL_HINT}") from None
        self.version = f"ngspice-{self.ng.ngspice_version}"

    def _messages(self) -> list[str]:
        lines = [ln.strip() for ln in (self.ng.stderr or "").splitlines() + (self.ng.stdout or "").splitlines()]
        return [ln for ln in lines if ln and _FATAL.search(ln)]

    def load(self, deck: str, where: str) -> None:
        if _CONTROL.search(deck):
            raise SimulationError(where, "deck has a .control block; amsc never emits one, refusing to run it")
        self.ng.clear_output()
        try:
            self.ng.remove_circuit()
        except Exception:  # noqa: BLE001 - nothing was loaded yet
            pass
        self.ng.destroy()
        self.ng.clear_output()
        self.ng.load_circuit(deck)
        bad = self._messages()
        if bad:
            raise SimulationError(where, f"ngspice rejected the deck: {bad[0]}")

    def sweep(self, deck: str, where: str, sources: list[str], values: np.ndarray, probes: list[str],
              base_dir: Path | None = None) -> np.ndarray:
        """Solve the operating point of ``deck`` once per row of ``values`` (the DC values of
        ``sources``) and return ``probes`` (node voltages, or ``I(Vname)``), shape
        ``[len(values), len(probes)]``."""
        n = values.shape[0]
        lines = deck.splitlines()
        at = _source_lines(lines, sources, where)
        drop = {k for k, ln in enumerate(lines) if ln.strip().lower() in (".op", ".end")} | set(at)
        pts = np.arange(max(n, 2))  # a PWL needs two knots
        stim = ["VSWEEP amsc_sweep 0 DC 0"]
        for s, col, k in zip(sources, values.T, at):
            node = lines[k].split()[1]
            col = np.resize(col, len(pts))
            knots = ", ".join(f"{int(k)}, {float(v)!r}" for k, v in zip(pts, col))
            stim.append(f"B{s} {node} 0 V = pwl(V(amsc_sweep), {knots})")
        # a probe is a node name, or I(source) for the current into the source's + terminal
        # (a swept source was replaced by the B source B<name>)
        swept = {x.lower() for x in sources}
        keys = [p.lower() if not p.lower().startswith("i(") else
                f"{'b' if p[2:-1].lower() in swept else ''}{p[2:-1]}#branch".lower() for p in probes]
        # keep only the probes: without .save ngspice stores every node of every point
        stim += [".save " + " ".join(keys), f".dc VSWEEP 0 {n - 1} 1", ".end"]
        body = [ln for k, ln in enumerate(lines) if k not in drop]
        plot = self._run(body + stim, where, base_dir)
        out = self._vectors(plot, probes, keys, where)
        if out.shape[0] != n:
            raise SimulationError(where, f"ngspice returned {out.shape[0]} sweep points, expected {n}")
        self.ng.destroy()
        return out

    def step_response(self, deck: str, where: str, sources: list[str], values: np.ndarray, probes: list[str],
                      t_stop: float, t_step: float, t_rise: float) -> tuple[np.ndarray, np.ndarray]:
        """A transient of ``deck``: at t = 0 every source of ``sources`` (DC 0 V in the deck) ramps in
        ``t_rise`` to its entry of ``values`` and holds. Returns ``(time, probes [len(time), len(probes)])``
        of node voltages over ``[0, t_stop]`` with a largest step of ``t_step``."""
        plot = self._run(step_deck(deck, where, sources, values, probes, t_stop, t_step, t_rise), where, None)
        t = np.asarray(plot["time"]._data, dtype=np.float64)
        out = self._vectors(plot, probes, [p.lower() for p in probes], where)
        self.ng.destroy()
        return t, out

    def transient(self, deck: str, where: str, probes: list[str], base_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run a deck that holds its own ``.tran``; returns ``(time, probes [len(time), len(probes)])``
        of node voltages and, for probes ``i(<source>)``, branch currents (only the probes are saved).
        ``base_dir``: the folder the deck's relative file names (a filesource's data) are read from."""
        body = [ln for ln in deck.splitlines() if ln.strip().lower() != ".end"]
        plot = self._run(body + [".save " + " ".join(probes), ".end"], where, base_dir)
        t = np.asarray(plot["time"]._data, dtype=np.float64)
        keys = [p[2:-1].lower() + "#branch" if p.lower().startswith("i(") else p.lower() for p in probes]
        out = self._vectors(plot, probes, keys, where)
        self.ng.destroy()
        return t, out

    def _vectors(self, plot, probes: list[str], keys: list[str], where: str) -> np.ndarray:
        missing = [p for p, k in zip(probes, keys) if k not in plot]
        if missing:
            raise SimulationError(where, f"ngspice result lacks {missing[:3]}")
        return np.stack([np.asarray(plot[k]._data, dtype=np.float64) for k in keys], axis=1)

    def _run(self, lines: list[str], where: str, base_dir: Path | None):
        """Load and run a deck (its analysis cards included); returns the last plot."""
        cwd = None
        if base_dir is not None:  # .include paths are relative to the deck's folder
            cwd = os.getcwd()
            os.chdir(base_dir)
        try:
            self.load("\n".join(lines) + "\n", where)
            self.ng.clear_output()
            try:
                self.ng.run()
            except Exception as e:  # noqa: BLE001 - PySpice raises NgSpiceCommandError
                msgs = self._messages()
                raise SimulationError(where, f"ngspice failed: {msgs[0] if msgs else e}") from None
        finally:
            if cwd is not None:
                os.chdir(cwd)
        bad = self._messages()
        if bad:
            raise SimulationError(where, f"ngspice failed: {bad[0]}")
        return self.ng.plot(None, self.ng.last_plot)


def _source_lines(lines: list[str], sources: list[str], where: str) -> list[int]:
    """The line of each named source in a deck (each must be defined exactly once)."""
    by_name: dict[str, list[int]] = {}
    for k, ln in enumerate(lines):
        tok = ln.split(None, 1)
        if tok:
            by_name.setdefault(tok[0], []).append(k)
    at = []
    for s in sources:
        hits = by_name.get(s, [])
        if len(hits) != 1:
            raise SimulationError(where, f"source '{s}' is defined {len(hits)} times in the deck, expected once")
        at.append(hits[0])
    return at


def step_deck(deck: str, where: str, sources: list[str], values: np.ndarray, probes: list[str], t_stop: float,
              t_step: float, t_rise: float) -> list[str]:
    """The lines of :meth:`NgspiceSession.step_response`'s transient deck."""
    lines = deck.splitlines()
    for k, v in zip(_source_lines(lines, sources, where), values):
        tok = lines[k].split()
        lines[k] = f"{tok[0]} {tok[1]} {tok[2]} PWL(0 0 {t_rise!r} {float(v)!r})"
    body = [ln for ln in lines if ln.strip().lower() not in (".op", ".end")]
    return body + [".save " + " ".join(probes), f".tran {t_step!r} {t_stop!r} 0 {t_step!r}", ".end"]
