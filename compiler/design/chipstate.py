"""Chip state: what a post-fabrication test measures on one chip, in a file amsc reads.

File format (``.npz``, a zip of ``.npy`` arrays; read with ``numpy.load(path, allow_pickle=False)``):

- ``header``: a 0-d unicode array holding a JSON object:
  ``{"format": "amsc-chip-state", "version": 1, "design": ..., "pdk": ..., "g_min": S, "g_max": S,
  "levels": L, "tiles": [{"name": tile, "shape": [R, P]}, ...], "program_sigma": s,
  "origin": {"drawn": {"seed": ..., "stuck_hrs_rate": ..., "stuck_lrs_rate": ...}} or
  {"measured": {...free-form tester metadata...}}}``.
  ``tiles`` lists every crossbar tile of the design in the order of ``manifest.json``'s ``tiles``;
  ``R`` is the tile's word lines (``tile_size[0]``) and ``P`` its pairs of bit lines
  (``tile_size[1] / 2``), the physical array whether or not the compiled layer uses all of it.
- ``<tile>.stuck``: int8 ``[2, R, P]``; index 0 the cells on the G+ bit line of each pair, 1 those on
  the G- bit line; row-major, word line ``r``, pair ``p``. 0 healthy, 1 stuck at HRS (cannot be
  set: reads near G_min), 2 stuck at LRS (cannot be reset: reads near G_max).
- ``<tile>.g``: float64 ``[2, R, P]``, siemens: each cell's read conductance in the test (a stuck
  cell: the conductance it is stuck at; a healthy cell: what it read after the test's reset).
  Finite, positive and at most ``2 G_max`` (an open cell: its leakage, not 0).
- ``program_sigma``: the chip's relative programming sigma of a one-shot write, as the test
  measured it (the PDK's ``variation.program_sigma`` for a drawn chip).

``amsc chip-state OUT --seed S -o chip.npz`` draws one from the PDK's variation model (what
``evaluate --mc`` draws per Monte-Carlo chip), so the flow runs without silicon; a tester's results
written in this layout load the same way. The file is byte-identical for the same design and seed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

FORMAT = "amsc-chip-state"
VERSION = 1
HEALTHY, STUCK_HRS, STUCK_LRS = 0, 1, 2
#: a cell reading above this multiple of G_max is a measurement error, not a conductance
G_LIMIT = 2.0


@dataclass
class ChipState:
    header: dict
    stuck: dict[str, np.ndarray]     # tile -> int8 [2, R, P]
    g: dict[str, np.ndarray]         # tile -> float [2, R, P], siemens

    def stuck_levels(self, tile: str) -> tuple[np.ndarray, np.ndarray]:
        """The stuck cells' conductances in levels (0 = G_min, levels-1 = G_max), NaN where healthy:
        ``(G+ cells [R, P], G- cells [R, P])``."""
        h = self.header
        step = (h["g_max"] - h["g_min"]) / (h["levels"] - 1)
        lv = np.where(self.stuck[tile] != HEALTHY, (self.g[tile].astype(np.float64) - h["g_min"]) / step, np.nan)
        near = np.rint(lv)
        lv = np.where(np.abs(lv - near) < 1e-9, near, lv)     # on a level up to rounding: that level
        return lv[0], lv[1]

    def fault_counts(self) -> dict:
        cells = sum(s.size for s in self.stuck.values())
        hrs = sum(int((s == STUCK_HRS).sum()) for s in self.stuck.values())
        lrs = sum(int((s == STUCK_LRS).sum()) for s in self.stuck.values())
        return {"cells": cells, "stuck_hrs": hrs, "stuck_lrs": lrs}


def physical_shape(tile: dict) -> tuple[int, int]:
    """A manifest tile's physical array: (word lines, pairs of bit lines)."""
    return int(tile["tile_size"][0]), int(tile["tile_size"][1]) // 2


def check_rates(hrs: float, lrs: float, where: str = "--stuck-rates") -> None:
    if not (0.0 <= hrs < 1.0 and 0.0 <= lrs < 1.0) or hrs + lrs >= 1.0 or not np.isfinite(hrs + lrs):
        raise InputError(where, f"{hrs:g} {lrs:g}; expected two rates in [0, 1) (stuck at HRS, stuck at LRS) "
                                "summing to less than 1")


def draw_stuck(rng, shape: tuple, hrs: float, lrs: float) -> np.ndarray:
    """Stuck-at map [2, *shape]: each cell independently stuck at HRS with probability ``hrs``, at
    LRS with ``lrs``."""
    u = rng.random((2,) + tuple(shape))
    return np.where(u < hrs, STUCK_HRS, np.where(u < hrs + lrs, STUCK_LRS, HEALTHY)).astype(np.int8)


def draw_state(manifest: dict, seed: int, hrs: float, lrs: float, sigma: float, rng=None) -> ChipState:
    """One chip drawn from the device model: stuck cells at G_min / G_max with rates ``hrs`` /
    ``lrs``; healthy cells read G_min (the test's reset). Tile ``k`` draws from ``SeedSequence([seed,
    k])`` (or from ``rng``, a Monte-Carlo chip)."""
    check_rates(hrs, lrs)
    pdk = manifest["pdk"]
    stuck, g, tiles = {}, {}, []
    for k, t in enumerate(manifest["tiles"]):
        shape = physical_shape(t)
        r = rng if rng is not None else np.random.default_rng(np.random.SeedSequence([seed, k]))
        s = draw_stuck(r, shape, hrs, lrs)
        stuck[t["name"]] = s
        g[t["name"]] = np.where(s == STUCK_LRS, pdk["g_max"], pdk["g_min"]).astype(np.float64)
        tiles.append({"name": t["name"], "shape": list(shape)})
    header = {"format": FORMAT, "version": VERSION, "design": manifest["design"], "pdk": pdk["name"],
              "g_min": pdk["g_min"], "g_max": pdk["g_max"], "levels": pdk["levels"], "tiles": tiles,
              "program_sigma": sigma,
              "origin": {"drawn": {"seed": seed, "stuck_hrs_rate": hrs, "stuck_lrs_rate": lrs}}}
    return ChipState(header, stuck, g)


def draw_for_design(manifest: dict, seed: int, stuck_rates: tuple[float, float] | None = None,
                    sigma: float | None = None) -> ChipState:
    """``amsc chip-state``: one chip of the compiled design, at the PDK's ``variation`` rates and
    one-shot sigma unless given."""
    var = manifest.get("variation") or {}
    if stuck_rates is None:
        if "stuck_hrs_rate" not in var:
            raise InputError("--stuck-rates", f"PDK '{manifest['pdk']['name']}' models no stuck-at faults; give "
                                              "--stuck-rates HRS LRS (for example 0.0175 0.0904)")
        stuck_rates = (var["stuck_hrs_rate"], var["stuck_lrs_rate"])
    if sigma is None:
        sigma = var.get("program_sigma", 0.0)
    return draw_state(manifest, seed, float(stuck_rates[0]), float(stuck_rates[1]), float(sigma))


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(a, order="C", copy=True), allow_pickle=False)
    return buf.getvalue()


def write_state(state: ChipState, path: Path) -> None:
    """The chip state as ``path`` (.npz), written through a temporary sibling and a rename; the zip
    entries carry a fixed date, so the bytes depend on the state alone."""
    from .folder import write_bytes_atomic

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        def put(name, a):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, _npy(a))
        put("header", np.array(json.dumps(state.header, sort_keys=True)))
        for t in state.header["tiles"]:
            put(f"{t['name']}.stuck", state.stuck[t["name"]])
            put(f"{t['name']}.g", state.g[t["name"]])
    write_bytes_atomic(Path(path), buf.getvalue())


def load_state(path, manifest: dict) -> ChipState:
    """Read and check a chip state against the compiled design's ``manifest``: one line naming the
    file and what does not match (``InputError``) otherwise."""
    return read_state(path, manifest["tiles"], manifest["pdk"], manifest["design"])


def read_state(path, want: list[dict], pdk: dict, design: str) -> ChipState:
    """Read a chip state and check it against the tiles ``want`` (``name``, ``tile_size``, in the
    design's tile order) and the PDK summary ``pdk`` (``g_min``, ``g_max``, ``levels``)."""
    path = Path(path)
    where = str(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(where, "no such chip-state file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(where, f"not a chip state (.npz of amsc chip-state): {e}") from None
    with z:
        if not hasattr(z, "files") or "header" not in z.files:
            raise InputError(where, "not a chip state: no 'header' entry")
        try:
            header = json.loads(str(z["header"][()]))
        except (ValueError, TypeError, zipfile.BadZipFile, OSError) as e:
            raise InputError(where, f"unreadable chip-state header: {e}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InputError(where, f"header: expected format '{FORMAT}'")
        if header.get("version") != VERSION:
            raise InputError(where, f"header: version {header.get('version')!r}; this amsc reads version {VERSION}")
        tiles = header.get("tiles")
        if not isinstance(tiles, list) or len(tiles) != len(want):
            raise InputError(where, f"holds {len(tiles) if isinstance(tiles, list) else 'no'} tiles; the design "
                                    f"'{design}' has {len(want)}")
        for k in ("g_min", "g_max", "levels"):
            if header.get(k) != pdk[k]:
                raise InputError(where, f"header: {k} {header.get(k)!r} is not the design's PDK's {pdk[k]!r}")
        sigma = header.get("program_sigma")
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not 0 <= sigma <= 10:
            raise InputError(where, f"header: program_sigma {sigma!r}; expected a relative sigma in [0, 10]")
        stuck, g = {}, {}
        g_hi = G_LIMIT * pdk["g_max"]
        for k, (t, m) in enumerate(zip(tiles, want)):
            name = t.get("name") if isinstance(t, dict) else None
            if name != m["name"]:
                raise InputError(where, f"tile {k} is {name!r}; the design's tile {k} is '{m['name']}' (cell "
                                        "ordering: the tiles of manifest.json, in order)")
            shape = (2,) + physical_shape(m)
            for key in ("stuck", "g"):
                if f"{name}.{key}" not in z.files:
                    raise InputError(where, f"tile '{name}': no '{name}.{key}' array")
            try:
                s, gv = z[f"{name}.stuck"], z[f"{name}.g"]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                raise InputError(where, f"tile '{name}': unreadable array ({e})") from None
            for key, a in (("stuck", s), ("g", gv)):
                if a.shape != shape:
                    raise InputError(where, f"tile '{name}': {key} has shape {list(a.shape)}; the tile's cells are "
                                            f"{list(shape)} ([G+/G-, word lines, bit-line pairs])")
            if s.dtype.kind not in "iu" or not np.isin(s, (HEALTHY, STUCK_HRS, STUCK_LRS)).all():
                raise InputError(where, f"tile '{name}': stuck map holds values other than 0 (healthy), 1 (stuck at "
                                        "HRS), 2 (stuck at LRS)")
            if gv.dtype.kind != "f":
                raise InputError(where, f"tile '{name}': conductances of dtype {gv.dtype}; expected floats (siemens)")
            bad = ~np.isfinite(gv) | (gv <= 0) | (gv > g_hi)
            if bad.any():
                i = tuple(int(v) for v in np.argwhere(bad)[0])
                raise InputError(where, f"tile '{name}': conductance {float(gv[i]):g} S at cell {list(i)} is not in "
                                        f"(0, {g_hi:g}] S (NaN, not positive, or above {G_LIMIT:g} x G_max)")
            stuck[name], g[name] = s.astype(np.int8), gv
    return ChipState(header, stuck, g)
