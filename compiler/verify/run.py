"""amsc verify: simulate every tile testbench in ngspice and compare with the numpy golden model."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..backend.plan import MANIFEST, json_text, sha256
from ..errors import InputError
from .checks import lsb, tolerance
from .golden import dac_vectors, tile_currents

#: Refuse more vectors than this per block (each is one operating point per tile).
MAX_VECTORS = 100_000

_SESSION = None


def _session():
    """One ngspice per worker process (shared-mode ngspice is not re-entrant)."""
    global _SESSION
    if _SESSION is None:
        from ..sim.ngspice import NgspiceSession

        _SESSION = NgspiceSession()
    return _SESSION


def load_compiled(out: str | Path) -> dict:
    """Read ``OUT/manifest.json`` and check that every file it lists is present and unchanged."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(out, "not a directory; expected the output folder of 'amsc compile'")
    mpath = out / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise InputError(mpath, "missing; is this the output folder of 'amsc compile'?") from None
    except (OSError, ValueError) as e:
        raise InputError(mpath, f"unreadable: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list) \
            or not isinstance(manifest.get("tiles"), list):
        raise InputError(mpath, "not an amsc manifest (needs 'files' and 'tiles' lists)")
    root = out.resolve()
    for f in manifest["files"]:
        rel = f.get("path", "") if isinstance(f, dict) else ""
        p = (out / rel).resolve()
        if not rel or root not in p.parents:
            raise InputError(mpath, f"file entry {f!r} points outside the output folder")
        try:
            data = p.read_bytes()
        except OSError:
            raise InputError(out / rel, "listed in manifest.json but missing or unreadable (partial output?)") from None
        if sha256(data) != f.get("sha256"):
            raise InputError(out / rel, "sha256 differs from manifest.json (file modified after compile)")
    return manifest


def verify_block(spec: dict) -> dict:
    """Simulate one tile; runs in a worker process."""
    t0 = time.perf_counter()
    out = Path(spec["out"])
    tile = spec["tile"]
    gpos = np.load(out / tile["conductances"]["gpos"], allow_pickle=False)
    gneg = np.load(out / tile["conductances"]["gneg"], allow_pickle=False)
    rows, cols = gpos.shape
    v = dac_vectors(spec["vectors"], rows, tile["dac_bits"], tile["v_read"], spec["seed"], spec["index"])
    deck = (out / tile["testbench"]).read_text()
    sess = _session()
    volts = sess.op_sweep(deck, tile["testbench"], [f"VIN_{i}" for i in range(rows)], v,
                          [f"out_{j}" for j in range(cols)])
    measured = -volts / tile["rf_ohm"]  # TIA: out = -Rf * I
    golden = tile_currents(v, gpos, gneg)
    err = np.abs(measured - golden)
    tol = tolerance(tile["adc_full_scale_a"], tile["adc_bits"], golden, spec["reltol"], spec["abstol"])
    max_err = float(err.max()) if err.size else 0.0
    return {
        "name": tile["name"], "passed": bool(max_err <= tol), "vectors": int(spec["vectors"]),
        "max_abs_err": max_err, "tolerance": tol, "lsb": lsb(tile["adc_full_scale_a"], tile["adc_bits"]),
        "max_abs_current": float(np.max(np.abs(golden))) if golden.size else 0.0,
        "seconds": time.perf_counter() - t0, "error": None, "simulator": f"ngspice-{sess.version}",
    }


def _write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".verify-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(json_text(obj))
    os.replace(tmp, path)


def verify_dir(out: str | Path, jobs: int = 1, vectors: int = 16, seed: int = 0, timeout: float = 600.0,
               on_block: Callable[[dict, int, int], None] | None = None) -> dict:
    from ..sim.executor import run_isolated

    if not 1 <= vectors <= MAX_VECTORS:
        raise InputError("--vectors", f"{vectors} is out of range 1..{MAX_VECTORS}")
    out = Path(out)
    manifest = load_compiled(out)
    tiles = sorted(manifest["tiles"], key=lambda t: t["name"])
    pdk = manifest["pdk"]
    specs = [{"out": str(out.resolve()), "tile": t, "index": k, "vectors": vectors, "seed": seed,
              "reltol": pdk["reltol"], "abstol": pdk["abstol"]} for k, t in enumerate(tiles)]
    done = [0]
    blocks: list[dict | None] = [None] * len(specs)

    def finished(k: int, res: tuple) -> None:
        status, val = res
        if status == "ok":
            blocks[k] = val
        else:
            blocks[k] = {"name": tiles[k]["name"], "passed": False, "vectors": vectors, "max_abs_err": None,
                         "tolerance": None, "seconds": None, "error": val}
        done[0] += 1
        if on_block is not None:
            on_block(blocks[k], done[0], len(specs))

    t0 = time.perf_counter()
    run_isolated(verify_block, specs, jobs=jobs, timeout=timeout, on_done=finished)
    report = {
        "passed": all(b["passed"] for b in blocks) and bool(blocks),
        "design": manifest.get("design"),
        "seed": seed,
        "vectors": vectors,
        "tolerance_rule": "one ADC LSB (2*I_fs/2^adc_bits) + reltol*max|I| + abstol",
        "blocks": blocks,
    }
    _write_json_atomic(out / "verify.json", report)
    report["seconds"] = time.perf_counter() - t0
    return report
