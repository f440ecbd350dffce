"""PDKs: ``pdk_templates/<name>/pdk.yaml`` plus Jinja templates, loaded and validated here.

Device and process specifics live only in the PDK folder and in this module; compiler code reads
them from the :class:`Pdk` object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import PdkError

#: Where bundled PDKs live (the repository's ``pdk_templates``); ``AMSC_PDK_PATH`` adds folders.
BUNDLED = Path(__file__).resolve().parents[2] / "pdk_templates"


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
_TEMPLATE_ROLES = ("crossbar", "testbench", "chip", "verilog_top", "verilog_tile", "verilog_macro",
                   "verilog_ctrl")


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
    vals = {}
    for dotted, (typ, ok, expl) in _FIELDS.items():
        v = _get(doc, dotted)
        if isinstance(v, bool) or v is None:
            raise PdkError(file, f"field '{dotted}' is missing or not a number; expected {expl}")
        if typ is int and not isinstance(v, int):
            raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}")
        try:
            v = typ(v)
        except (TypeError, ValueError):
            raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}") from None
        if not ok(v):
            raise PdkError(file, f"field '{dotted}' = {v!r}; expected {expl}")
        vals[dotted] = v
    if vals["device.g_max"] <= vals["device.g_min"]:
        raise PdkError(file, "field 'device.g_max' must exceed 'device.g_min'")
    templates = doc.get("templates")
    if not isinstance(templates, dict):
        raise PdkError(file, "field 'templates' is missing; expected a mapping of role -> template file")
    for role in _TEMPLATE_ROLES:
        t = templates.get(role)
        if not isinstance(t, str) or not (folder / t).is_file() or "/" in t:
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
        templates={r: templates[r] for r in _TEMPLATE_ROLES},
    )
