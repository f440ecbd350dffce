"""ngspice through PySpice's shared-library interface. The only module that imports PySpice.

Shared-mode ngspice is not re-entrant: use one :class:`NgspiceSession` per process.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from ..errors import SimulationError, ToolError

INSTALL_HINT = ("install ngspice 46 with its shared library: run 'make setup' (Debian: apt-get install -t "
                "bookworm-backports ngspice libngspice0 libngspice0-dev)")

# ngspice messages that mean the deck was not read as written
_FATAL = re.compile(r"(error|not a valid|ignored|unknown|could not|can't find|cannot|singular|"
                    r"timestep too small|no convergence|failed)", re.I)


class NgspiceSession:
    def __init__(self):
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported Ngspice version 46"
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared

            self.ng = NgSpiceShared.new_instance()
        except ImportError as e:
            raise ToolError("PySpice", f"cannot import PySpice ({e}); run 'make setup'") from None
        except OSError as e:
            raise ToolError("libngspice", f"cannot load the ngspice shared library ({e}); {INSTALL_HINT}") from None
        self.version = str(self.ng.ngspice_version)

    def _messages(self) -> list[str]:
        lines = [ln.strip() for ln in (self.ng.stderr or "").splitlines() + (self.ng.stdout or "").splitlines()]
        return [ln for ln in lines if ln and _FATAL.search(ln)]

    def load(self, deck: str, where: str) -> None:
        self.ng.clear_output()
        try:
            self.ng.remove_circuit()
        except Exception:  # noqa: BLE001 - nothing loaded yet
            pass
        self.ng.destroy()
        self.ng.clear_output()
        self.ng.load_circuit(deck)
        bad = self._messages()
        if bad:
            raise SimulationError(where, f"ngspice rejected the deck: {bad[0]}")

    def op_sweep(self, deck: str, where: str, sources: list[str], values: np.ndarray,
                 probes: list[str]) -> np.ndarray:
        """Load ``deck``; for each row of ``values`` set the DC value of ``sources``, run an operating
        point and read the node voltages ``probes``. Returns ``[len(values), len(probes)]``."""
        self.load(deck, where)
        out = np.empty((values.shape[0], len(probes)))
        for k, row in enumerate(values):
            for s, v in zip(sources, row):
                self.ng.exec_command(f"alter {s.lower()} dc = {float(v)!r}")
            self.ng.clear_output()
            try:
                self.ng.run()
            except Exception as e:  # noqa: BLE001 - PySpice raises NgSpiceCommandError
                msgs = self._messages()
                raise SimulationError(where, f"ngspice failed on vector {k}: {msgs[0] if msgs else e}") from None
            bad = self._messages()
            if bad:
                raise SimulationError(where, f"ngspice failed on vector {k}: {bad[0]}")
            plot = self.ng.plot(None, self.ng.last_plot)
            missing = [p for p in probes if p.lower() not in plot]
            if missing:
                raise SimulationError(where, f"ngspice result lacks node(s) {missing[:3]}")
            out[k] = [float(plot[p.lower()]._data[0]) for p in probes]
            self.ng.destroy()
        return out
