"""The schema of ``manifest.json``: what every command may rely on before it uses a value.

Checked: the top-level structure, every number finite (NaN and Infinity literals are refused when
the file is parsed), the PDK summary's bits and conductances in the ranges compile accepts, and each
tile's geometry within its crossbar. Paths are listed by :func:`path_fields`; the reader requires
each to be a file the manifest lists (and so confined and hashed).
"""

from __future__ import annotations

import math
import re

from ..errors import InputError

#: the ranges compile accepts (cli.py: --adc-bits, --dac-bits, --weight-bits, --tile)
BITS = (1, 24)
MAX_TILE = 4096
MAX_LEVELS = 2 ** 16
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: keys whose string values are paths into the folder, and containers whose values all are
PATH_KEYS = ("testbench", "subckt_file", "file", "deck", "rtl", "levels")
PATH_MAPS = ("conductances", "arrays", "table")


def _walk(obj, where: str):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            yield from _walk(v, f"{where}[{k}]")
    else:
        yield where, obj


def path_fields(manifest: dict):
    """``(field, path)`` for every path a command may read from the manifest (its ``files`` aside)."""
    def walk(obj, where: str, in_map: bool):
        if isinstance(obj, dict):
            for k, v in obj.items():
                here = f"{where}.{k}" if where else str(k)
                if isinstance(v, str) and (in_map or k in PATH_KEYS):
                    yield here, v
                elif isinstance(v, (dict, list)):
                    yield from walk(v, here, k in PATH_MAPS)
        elif isinstance(obj, list):
            for k, v in enumerate(obj):
                yield from walk(v, f"{where}[{k}]", False)
    yield from walk({k: v for k, v in manifest.items() if k not in ("files", "ppa", "options")}, "", False)
    source = manifest.get("source")
    if isinstance(source, dict) and isinstance(source.get("calibration"), str):
        yield "source.calibration", source["calibration"]
    # the readouts' testbench inputs ('inputs' names no file elsewhere: a compensated tile's says unipolar)
    ro = manifest.get("readout")
    if isinstance(ro, dict):
        others = ro.get("balanced") if isinstance(ro.get("balanced"), list) else []
        for where, e in [("readout", ro)] + [(f"readout.balanced[{k}]", x) for k, x in enumerate(others)]:
            if isinstance(e, dict) and isinstance(e.get("inputs"), str):
                yield f"{where}.inputs", e["inputs"]


def _int(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _pos(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def check_manifest(mpath, m) -> None:
    """Raise a one-line :class:`InputError` naming the field of ``manifest.json`` that is wrong."""
    def bad(field: str, expected: str):
        raise InputError(mpath, f"field '{field}': expected {expected} (edited by hand, or not written by amsc?)")

    if not isinstance(m, dict):
        bad("(top level)", "an object")
    if not isinstance(m.get("files"), list) or not isinstance(m.get("tiles"), list):
        raise InputError(mpath, "not an amsc manifest (needs 'files' and 'tiles' lists)")
    for where, v in _walk(m, ""):
        if isinstance(v, float) and not math.isfinite(v):
            bad(where, "a finite number")
    seen = set()
    for k, f in enumerate(m["files"]):
        if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
                and _HEX64.match(f["sha256"])):
            bad(f"files[{k}]", "{path, sha256 (64 hex digits)}")
        if f["path"] in seen:
            bad(f"files[{k}].path", f"a path listed once ('{f['path']}' is listed twice)")
        seen.add(f["path"])
    pdk = m.get("pdk")
    if not isinstance(pdk, dict):
        bad("pdk", "the PDK summary (an object)")
    for key in ("adc_bits", "dac_bits"):
        if key in pdk and not _int(pdk[key], *BITS):
            bad(f"pdk.{key}", f"an integer in {BITS[0]}..{BITS[1]}")
    if "levels" in pdk and not _int(pdk["levels"], 2, MAX_LEVELS):
        bad("pdk.levels", f"an integer in 2..{MAX_LEVELS}")
    for key in ("g_min", "g_max", "v_read"):
        if key in pdk and not _pos(pdk[key]):
            bad(f"pdk.{key}", "a positive number")
    if "g_min" in pdk and "g_max" in pdk and not pdk["g_min"] < pdk["g_max"]:
        bad("pdk.g_max", "a conductance above g_min")
    if m.get("kind") == "dynamics":
        if not isinstance(m.get("dynamics"), dict):
            bad("dynamics", "the continuous-time model's section (an object)")
        return
    if not m["tiles"]:
        bad("tiles", "at least one tile (a network design has crossbars)")
    names = set()
    for k, t in enumerate(m["tiles"]):
        _check_tile(t, f"tiles[{k}]", bad)
        if t["name"] in names:
            bad(f"tiles[{k}].name", f"a unique tile name ('{t['name']}' is used twice)")
        names.add(t["name"])
    ro = m.get("readout")
    pools = ro.get("pools", {}) if isinstance(ro, dict) else {}
    if not (isinstance(pools, dict) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                            for v in pools.values())):
        bad("readout.pools", "each pipeline stage's ADC count (a positive integer by stage name)")
    for k, t in enumerate(m["tiles"]):
        if "adc_pool" in t and t["adc_pool"] not in pools:
            bad(f"tiles[{k}].adc_pool", "the name of a stage in readout.pools")
    if not isinstance(m.get("layers"), list):
        bad("layers", "a list")
    for k, layer in enumerate(m["layers"]):
        if not isinstance(layer, dict) or not isinstance(layer.get("tiles"), list) \
                or any(n not in names for n in layer["tiles"]):
            bad(f"layers[{k}].tiles", "names of tiles in 'tiles'")


def _check_tile(t, where: str, bad) -> None:
    if not isinstance(t, dict) or not isinstance(t.get("name"), str):
        bad(where, "a tile object with a name")
    size = t.get("tile_size")
    if not (isinstance(size, list) and len(size) == 2 and all(_int(s, 1, MAX_TILE) for s in size)):
        bad(f"{where}.tile_size", f"[rows, cols], each an integer in 1..{MAX_TILE}")
    for key, limit in (("rows", size[0]), ("cols", size[1])):
        span = t.get(key)
        if not (isinstance(span, list) and len(span) == 2 and all(_int(s, 0, 1 << 40) for s in span)
                and span[0] < span[1] and span[1] - span[0] <= limit):
            bad(f"{where}.{key}", f"[first, last + 1] spanning 1..{limit} (the tile's {key})")
    for key in ("adc_bits", "dac_bits"):
        if not _int(t.get(key), *BITS):
            bad(f"{where}.{key}", f"an integer in {BITS[0]}..{BITS[1]}")
    for key in ("adc_full_scale_a", "rf_ohm", "v_read"):
        if not _pos(t.get(key)):
            bad(f"{where}.{key}", "a positive number")
    for key in ("testbench", "subckt_file"):
        if not isinstance(t.get(key), str):
            bad(f"{where}.{key}", "a path")
    if "adc_share" in t and not _int(t["adc_share"], 1, 1 << 20):
        bad(f"{where}.adc_share", "a positive integer (outputs an ADC)")
    if "adc_group" in t and not isinstance(t["adc_group"], str):
        bad(f"{where}.adc_group", "the name of the ADC group the tile shares")
    if not (isinstance(t.get("conductances"), dict) and {"gpos", "gneg"} <= set(t["conductances"])):
        bad(f"{where}.conductances", "the paths of gpos and gneg")
    cell = t.get("cell")
    if not (isinstance(cell, dict) and cell.get("type") in ("1r", "1t1r")):
        bad(f"{where}.cell.type", "'1r' or '1t1r'")
    if cell["type"] == "1t1r" and not isinstance(cell.get("table"), dict):
        bad(f"{where}.cell.table", "the paths of the transistor table")
