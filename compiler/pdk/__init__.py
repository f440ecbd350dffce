"""PDKs: ``pdk_templates/<name>/pdk.yaml`` plus Jinja templates, loaded and validated here.

Device and process specifics live only in the PDK folder and in this module; compiler code reads
them from the :class:`Pdk` object.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import re

import yaml

from ..errors import PdkError

#: Where bundled PDKs live: ``compiler/pdk_templates``, package data of the wheel (the repository's
#: top-level ``pdk_templates`` is a link to it); ``AMSC_PDK_PATH`` adds folders.
BUNDLED = Path(__file__).resolve().parents[1] / "pdk_templates"


@dataclass(frozen=True)
class Pdk:
    name: str
    path: Path
    description: str
    g_min: float          # S, lowest programmable conductance (high-resistance state)
    g_max: float          # S, highest programmable conductance (low-resistance state)
    levels: int           # programmable conductance levels per device
    v_read: float         # V, largest word-line read voltage
    tile_rows: int        # word lines per tile
    tile_cols: int        # bit lines per tile (two per signed output)
    adc_bits: int
    dac_bits: int
    tia_v_out_fs: float   # V, TIA output at ADC full scale
    r_wl_segment: float   # ohm of word-line wire per cell pitch (used with --parasitics)
    r_bl_segment: float   # ohm of bit-line wire per cell pitch (used with --parasitics)
    reltol: float         # simulator relative tolerance
    abstol: float         # simulator absolute current tolerance, A
    templates: dict       # role -> template file name
    #: {"type": "1r"}, or for a 1T1R cell {"type": "1t1r", "transistor": {...}, "v_gate": V, "rram": {...}}
    cell: dict = dataclasses.field(default_factory=lambda: {"type": "1r"})
    #: {"type": "ideal"} or {"type": "opamp", "gain": A0, "gbw_hz": GBW}
    tia: dict = dataclasses.field(default_factory=lambda: {"type": "ideal"})
    #: foundry device models to include, or None: {"package", "root", "corners": {name: file}, "common": [...],
    #: "params": {...}}
    models: dict | None = None
    #: template folders searched in order: this PDK's, then the PDKs it inherits from
    template_dirs: tuple = ()
    #: DACs drive word lines with either sign, in [-v_read, v_read] (``dac.bipolar``); then layers
    #: whose inputs can be negative keep their chip datapath
    dac_bipolar: bool = False
    #: area, energy and timing figures of 'amsc report' (``ppa`` in pdk.yaml, merged over the
    #: inherited PDK's), or None: ``{section: {field: number}}``, see PPA_FIELDS
    ppa: dict | None = None
    #: device non-idealities for Monte Carlo ('amsc evaluate --mc'; ``variation`` in pdk.yaml), or None
    variation: dict | None = None
    #: the analog stages of continuous-time models on transistors (``analog`` in pdk.yaml: the supply,
    #: the activations' differential pair and source follower, the TIA swing), or None
    analog: dict | None = None
    #: the sample-and-hold and multiplexer in front of a shared ADC (``readout`` in pdk.yaml, or the
    #: inherited PDK's), or None: then every output has its own ADC (``--adc-share 1``)
    readout: dict | None = None

    @property
    def g_step(self) -> float:
        return (self.g_max - self.g_min) / (self.levels - 1)


# field path -> (type, check, explanation)
def _pos(x):
    return x > 0


_FIELDS = {
    "device.g_min": (float, _pos, "a positive conductance in siemens"),
    "device.g_max": (float, _pos, "a positive conductance in siemens, above g_min"),
    "device.levels": (int, lambda x: 2 <= x <= 65536, "an integer level count in 2..65536"),
    "read.v_read": (float, lambda x: 0 < x <= 5, "a read voltage in (0, 5] V"),
    "tile.rows": (int, lambda x: 1 <= x <= 4096, "an integer in 1..4096"),
    "tile.cols": (int, lambda x: 2 <= x <= 4096 and x % 2 == 0, "an even integer in 2..4096"),
    "adc.bits": (int, lambda x: 1 <= x <= 24, "an integer in 1..24"),
    "dac.bits": (int, lambda x: 1 <= x <= 24, "an integer in 1..24"),
    "tia.v_out_fs": (float, _pos, "a positive voltage"),
    "wire.r_wl_segment": (float, _pos, "a positive resistance in ohms per cell pitch"),
    "wire.r_bl_segment": (float, _pos, "a positive resistance in ohms per cell pitch"),
    "sim.reltol": (float, lambda x: 0 < x < 0.1, "a relative tolerance in (0, 0.1)"),
    "sim.abstol": (float, _pos, "a positive current in amperes"),
}
#: roles a PDK may template: continuous-time dynamics and their controller (backend/dynamics.py,
#: backend/dynamics_1t1r.py), the shared ADCs' readout, the feature maps' SRAM macro (backend/verilog.py)
_OPTIONAL_ROLES = ("dynamics", "dynamics_ctrl", "readout", "readout_tb", "sram_macro", "sram_macro_sim")
_TEMPLATE_ROLES = ("crossbar", "testbench", "chip", "verilog_top", "verilog_tile", "verilog_macro",
                   "verilog_macro_sim", "verilog_tb")


def _typed(file: Path, doc: dict, dotted: str, typ, ok, expl: str):
    v = _get(doc, dotted)
    if typ is str:
        if not isinstance(v, str) or not ok(v):
            raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}")
        return v
    if isinstance(v, bool) or v is None or (typ is int and not isinstance(v, int)):
        raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}")
    try:
        v = typ(v)
    except (TypeError, ValueError):
        raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}") from None
    if not ok(v):
        raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}")
    return v


_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$").match


def _flag(file: Path, doc: dict, dotted: str, default: bool) -> bool:
    v = _get(doc, dotted)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise PdkError(file, f"field '{dotted}' = {v!r}; expected true or false")
    return v


def _cell(file: Path, doc: dict) -> dict:
    kind = _get(doc, "cell.type") or "1r"
    if kind == "1r":
        return {"type": "1r"}
    if kind != "1t1r":
        raise PdkError(file, f"field 'cell.type' = {kind!r}; expected '1r' or '1t1r'")
    t = lambda d, ty, ok, ex: _typed(file, doc, d, ty, ok, ex)  # noqa: E731
    return {
        "type": "1t1r",
        "transistor": {
            "subckt": t("cell.transistor.subckt", str, _NAME_OK, "a device subckt name"),
            "w_um": t("cell.transistor.w_um", float, _pos, "a positive width in um"),
            "l_um": t("cell.transistor.l_um", float, _pos, "a positive length in um"),
        },
        "v_gate": t("cell.v_gate", float, lambda x: 0 < x <= 5, "a gate (select-line) voltage in (0, 5] V"),
        "rram": {
            "i0": t("cell.rram.i0", float, _pos, "a positive current in A"),
            "g0_nm": t("cell.rram.g0_nm", float, _pos, "a positive length in nm"),
            "v0": t("cell.rram.v0", float, _pos, "a positive voltage"),
            "sigma_gap_nm": t("cell.rram.sigma_gap_nm", float, lambda x: 0 <= x < 1, "a gap sigma in [0, 1) nm"),
            "nonlinear": _flag(file, doc, "cell.rram.nonlinear", True),
        },
    }


def _tia(file: Path, doc: dict) -> dict:
    kind = _get(doc, "tia.type") or "ideal"
    if kind == "ideal":
        return {"type": "ideal"}
    if kind != "opamp":
        raise PdkError(file, f"field 'tia.type' = {kind!r}; expected 'ideal' or 'opamp'")
    return {"type": "opamp",
            "gain": _typed(file, doc, "tia.gain", float, lambda x: x >= 10, "an open-loop gain >= 10"),
            "gbw_hz": _typed(file, doc, "tia.gbw_hz", float, _pos, "a positive gain-bandwidth in Hz")}


def _models(file: Path, doc: dict) -> dict | None:
    m = doc.get("models")
    if m is None:
        return None
    if not isinstance(m, dict):
        raise PdkError(file, "field 'models' must be a mapping")
    for key in ("package", "root"):
        _typed(file, doc, f"models.{key}", str, lambda v: ".." not in v, "a string")
    corners = m.get("corners")
    if not isinstance(corners, dict) or not corners or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in corners.items()):
        raise PdkError(file, "field 'models.corners' must map corner names to parameter files")
    common = m.get("common")
    if not isinstance(common, list) or not all(isinstance(f, str) and ".." not in f for f in common):
        raise PdkError(file, "field 'models.common' must be a list of model file names")
    params = m.get("params", {})
    if not isinstance(params, dict) or not all(_NAME_OK(str(k)) and isinstance(v, (int, float))
                                               for k, v in params.items()):
        raise PdkError(file, "field 'models.params' must map parameter names to numbers")
    return {"package": m["package"], "root": m["root"], "corners": dict(corners), "common": list(common),
            "params": dict(params)}


#: ``ppa`` sections and their numeric fields (every one positive); ``digital.cells`` names the
#: package folder of the standard-cell LEFs.
PPA_FIELDS = {
    "cell": ("area_um2", "pitch_um"),
    "wire": ("c_f_per_um",),
    "adc": ("bits", "energy_pj", "area_um2", "rate_msps"),
    "dac": ("bits", "energy_pj", "area_um2"),
    "tia": ("gain", "gbw_hz", "power_uw", "area_um2", "settle_lsb"),
    "digital": ("add32_pj", "mul32_pj", "add8_pj", "sram_byte_pj", "sram_ref_bytes", "scale", "clock_mhz",
                "utilization"),
    # optional: the SRAM macro feature maps may be held in (compile --map-memory; backend/verilog.map_memories)
    "sram": ("words", "width", "area_um2", "access_pj", "leak_uw", "max_mhz", "vdd", "flop_bit_um2"),
}
#: ``ppa`` sections a PDK may leave out
PPA_OPTIONAL = ("sram",)


def _ppa(file: Path, doc: dict, inherited: dict | None) -> dict | None:
    own = doc.get("ppa")
    if own is None:
        return inherited
    if not isinstance(own, dict) or not all(isinstance(v, dict) for v in own.values()):
        raise PdkError(file, "field 'ppa' must map sections (cell, wire, adc, dac, tia, digital) to mappings")
    unknown = sorted(set(own) - set(PPA_FIELDS))
    if unknown:
        raise PdkError(file, f"field 'ppa.{unknown[0]}' is not a ppa section; expected one of {', '.join(PPA_FIELDS)}")
    merged = {k: dict(v) for k, v in (inherited or {}).items()}
    for sec, vals in own.items():
        merged.setdefault(sec, {}).update(vals)
    res = {}
    for sec, fields in PPA_FIELDS.items():
        if sec not in merged:
            if sec in PPA_OPTIONAL:
                continue
            raise PdkError(file, f"field 'ppa.{sec}' is missing (and not inherited)")
        res[sec] = {}
        for f in fields:
            res[sec][f] = _typed(file, {"ppa": merged}, f"ppa.{sec}.{f}", float, _pos, "a positive number")
    cells = merged["digital"].get("cells")
    if not isinstance(cells, dict) or not all(isinstance(cells.get(k), str) and ".." not in cells[k]
                                              for k in ("package", "root")):
        raise PdkError(file, "field 'ppa.digital.cells' must give the 'package' and 'root' of the standard-cell LEFs")
    res["digital"]["cells"] = {"package": cells["package"], "root": cells["root"]}
    if res["digital"]["utilization"] > 1:
        raise PdkError(file, "field 'ppa.digital.utilization' must be in (0, 1]")
    return res


def _analog(file: Path, doc: dict) -> dict | None:
    v = doc.get("analog")
    if v is None:
        return None
    if not isinstance(v, dict):
        raise PdkError(file, "field 'analog' must be a mapping")
    t = lambda d, ok, ex: _typed(file, doc, f"analog.{d}", float, ok, ex)  # noqa: E731
    volt = lambda x: -10 < x < 10  # noqa: E731
    res = {"vdd": t("vdd", _pos, "a positive supply in V"), "tia_swing": t("tia_swing", _pos, "a positive swing in V"),
           "pair": {k: t(f"pair.{k}", _pos, e) for k, e in (
               ("w_um", "a positive width in um"), ("l_um", "a positive length in um"),
               ("vcm", "a positive common mode in V"), ("i_tail", "a positive tail current in A"),
               ("r_load", "a positive load in ohm"), ("dv_span", "a positive input span in V"))},
           "follower": {"r_source": t("follower.r_source", _pos, "a positive resistance in ohm"),
                        **{k: t(f"follower.{k}", volt, "a gate voltage in V") for k in ("v_g_top", "v_g_lo", "v_g_hi")}}}
    f = res["follower"]
    if not f["v_g_lo"] < f["v_g_top"] <= f["v_g_hi"]:
        raise PdkError(file, "fields 'analog.follower': expected v_g_lo < v_g_top <= v_g_hi")
    return res


#: ``readout`` fields of pdk.yaml and what each must be
READOUT_FIELDS = {"hold_cap_f": "a positive capacitance in F", "adc_cap_f": "a positive capacitance in F",
                  "switch_ron": "a positive resistance in ohm", "switch_roff": "a positive resistance in ohm",
                  "inject_cap_f": "a positive capacitance in F", "inject_mismatch": "a relative sigma in [0, 1)",
                  "v_clock": "a positive clock swing in V", "t_edge_s": "a positive edge time in s",
                  "cap_f_per_um2": "a positive capacitor density in F/um^2",
                  "switch_area_um2": "a positive area in um^2"}


def _readout(file: Path, doc: dict) -> dict:
    if not isinstance(doc["readout"], dict):
        raise PdkError(file, "field 'readout' must be a mapping")
    res = {k: _typed(file, doc, f"readout.{k}", float, (lambda x: 0 <= x < 1) if k == "inject_mismatch" else _pos, e)
           for k, e in READOUT_FIELDS.items()}
    if res["switch_roff"] <= res["switch_ron"]:
        raise PdkError(file, "field 'readout.switch_roff' must exceed 'readout.switch_ron'")
    return res


def _variation(file: Path, doc: dict) -> dict | None:
    v = doc.get("variation")
    if v is None:
        return None
    if not isinstance(v, dict):
        raise PdkError(file, "field 'variation' must be a mapping")
    t = lambda d, ok, ex: _typed(file, doc, f"variation.{d}", float, ok, ex)  # noqa: E731
    frac = lambda x: 0 <= x < 1  # noqa: E731
    res = {
        "program_sigma": t("program_sigma", lambda x: 0 <= x < 2, "a relative sigma in [0, 2)"),
        "read_noise_sigma": t("read_noise_sigma", lambda x: 0 <= x < 1, "a relative sigma in [0, 1)"),
        "stuck_hrs_rate": t("stuck_hrs_rate", frac, "a fraction of cells in [0, 1)"),
        "stuck_lrs_rate": t("stuck_lrs_rate", frac, "a fraction of cells in [0, 1)"),
        "drift_nu": t("drift_nu", lambda x: 0 <= x < 1, "a drift exponent in [0, 1)"),
        "drift_t0_s": t("drift_t0_s", _pos, "a positive time in seconds"),
    }
    if v.get("write_verify") is not None:
        res["write_verify"] = {
            "iterations": int(t("write_verify.iterations", lambda x: x >= 1 and x == int(x), "a whole number >= 1")),
            "sigma_factor": t("write_verify.sigma_factor", lambda x: 0 < x < 1, "a factor in (0, 1)"),
            "sigma_floor": t("write_verify.sigma_floor", lambda x: 0 <= x < 2, "a relative sigma in [0, 2)"),
            "pulse_energy_pj": t("write_verify.pulse_energy_pj", _pos, "a positive energy in pJ"),
            "pulse_ns": t("write_verify.pulse_ns", _pos, "a positive duration in ns"),
        }
    if res["stuck_hrs_rate"] + res["stuck_lrs_rate"] >= 1:
        raise PdkError(file, "fields 'variation.stuck_hrs_rate' + 'stuck_lrs_rate' must stay below 1")
    return res


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("AMSC_PDK_PATH", "").split(os.pathsep) if p]
    return extra + [BUNDLED]


def available_pdks() -> list[str]:
    names = set()
    for root in search_path():
        if root.is_dir():
            names |= {p.parent.name for p in root.glob("*/pdk.yaml")}
    return sorted(names)


def _get(doc: dict, dotted: str):
    cur = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def load_pdk(name_or_path: str) -> Pdk:
    """Load a PDK by bundled name, or from a folder holding ``pdk.yaml``."""
    cand = Path(name_or_path)
    folder = None
    if (cand / "pdk.yaml").is_file():
        folder = cand
    else:
        for root in search_path():
            if (root / name_or_path / "pdk.yaml").is_file() and "/" not in name_or_path:
                folder = root / name_or_path
                break
    if folder is None:
        raise PdkError(name_or_path, f"unknown PDK; available: {', '.join(available_pdks()) or 'none'} "
                                     "(or give a folder holding pdk.yaml)")
    file = folder / "pdk.yaml"
    try:
        doc = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PdkError(file, f"cannot read: {e}") from None
    if not isinstance(doc, dict):
        raise PdkError(file, "expected a mapping at the top level")
    vals = {dotted: _typed(file, doc, dotted, typ, ok, expl) for dotted, (typ, ok, expl) in _FIELDS.items()}
    if vals["device.g_max"] <= vals["device.g_min"]:
        raise PdkError(file, "field 'device.g_max' must exceed 'device.g_min'")
    templates = doc.get("templates", {})
    if not isinstance(templates, dict):
        raise PdkError(file, "field 'templates' must be a mapping of role -> template file")
    dirs = [folder.resolve()]
    parent = doc.get("inherit")
    base = None
    if parent is not None:
        # roles this PDK does not template itself come from the PDK it inherits from
        if not isinstance(parent, str) or "/" in parent or parent == folder.name:
            raise PdkError(file, f"field 'inherit' = {parent!r}; expected the name of another bundled PDK")
        base = load_pdk(parent)
        templates = {**base.templates, **templates}
        dirs += list(base.template_dirs)
    for role in _TEMPLATE_ROLES:
        t = templates.get(role)
        if not isinstance(t, str) or "/" in t or not any((d / t).is_file() for d in dirs):
            raise PdkError(file, f"field 'templates.{role}' = {t!r}; expected a template file in {folder}")
    pdk_name = doc.get("name")
    if not isinstance(pdk_name, str) or not pdk_name:
        raise PdkError(file, "field 'name' is missing; expected a string")
    return Pdk(
        name=pdk_name, path=folder.resolve(), description=str(doc.get("description", "")).strip(),
        g_min=vals["device.g_min"], g_max=vals["device.g_max"], levels=vals["device.levels"],
        v_read=vals["read.v_read"], tile_rows=vals["tile.rows"], tile_cols=vals["tile.cols"],
        adc_bits=vals["adc.bits"], dac_bits=vals["dac.bits"], tia_v_out_fs=vals["tia.v_out_fs"],
        r_wl_segment=vals["wire.r_wl_segment"], r_bl_segment=vals["wire.r_bl_segment"],
        reltol=vals["sim.reltol"], abstol=vals["sim.abstol"],
        templates={**{r: templates[r] for r in _TEMPLATE_ROLES},
                   **{r: templates[r] for r in _OPTIONAL_ROLES if isinstance(templates.get(r), str)
                      and "/" not in templates[r] and any((d / templates[r]).is_file() for d in dirs)}},
        cell=_cell(file, doc), tia=_tia(file, doc), models=_models(file, doc), template_dirs=tuple(dirs),
        dac_bipolar=_flag(file, doc, "dac.bipolar", False),
        ppa=_ppa(file, doc, base.ppa if base is not None else None),
        variation=_variation(file, doc), analog=_analog(file, doc),
        readout=_readout(file, doc) if "readout" in doc else (base.readout if base is not None else None),
    )
