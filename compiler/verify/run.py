"""amsc verify: simulate every tile testbench and compare it with the numpy golden model.

Each block is self-contained (deck text, conductances, settings), so it runs the same in a local
worker process or on a Dask worker. Results are cached in ``OUT/.verify-cache/`` under a key made of
everything that decides them, so an unchanged second run simulates nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..backend.plan import MANIFEST, json_text, sha256
from ..errors import InputError
from .checks import lsb, tolerance
from ..sim.netlist import read_deck
from .golden import dac_vectors, tile_currents, tile_currents_1t1r

#: Refuse more vectors than this per block (each is one operating point per tile).
MAX_VECTORS = 100_000
ENGINES = ("ngspice", "mna")
CACHE_DIR = ".verify-cache"
#: Vectors per simulation task. A block with more vectors is split into tasks of this size, so
#: one large tile can keep every worker busy. Each task pays one deck load and sweep set-up
#: (about 40 ms for a 32x32 mesh tile, 0.26 s for 128x128). With 256, that costs about 10 % on
#: small tiles at 1024 vectors, against 60 % with 64-vector tasks. The size is fixed, not derived
#: from --jobs, so the same design, vectors and seed give the same numbers on any pool or cluster.
CHUNK = 256


def engine(name: str):
    if name == "ngspice":
        from ..sim.ngspice import session

        return session()
    if name == "mna":
        from ..sim.mna import MnaEngine

        return MnaEngine()
    raise InputError("--engine", f"unknown engine '{name}'; expected one of {', '.join(ENGINES)}")


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


def warm_up(engine_name: str) -> None:
    """Worker start-up: load the simulator and the plotting code before the first block."""
    from . import report  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401

    engine(engine_name)


def simulate_chunk(task: dict) -> dict:
    """Simulate vectors ``[lo, hi)`` of one tile (runs in a worker); returns the TIA output voltages."""
    t0 = time.perf_counter()
    rows, cols = task["gpos"].shape
    v = block_vectors(task)[task["lo"]:task["hi"]]
    eng = engine(task["engine"])
    volts = eng.sweep(task["deck"], task["where"], [f"VIN_{i}" for i in range(rows)], v,
                      [f"out_{j}" for j in range(cols)])
    return {"volts": volts, "simulator": eng.version, "seconds": time.perf_counter() - t0}


def block_vectors(spec: dict) -> np.ndarray:
    """All input vectors of a block: a function of the seed and the block's index only, so results
    do not depend on how the vectors are split into chunks."""
    return dac_vectors(spec["vectors"], spec["gpos"].shape[0], spec["dac_bits"], spec["v_read"], spec["seed"],
                       spec["index"], spec["bipolar"])


def evaluate_block(spec: dict, volts: np.ndarray, seconds: float, simulator: str) -> dict:
    """Compare the simulated TIA outputs of a block with the golden currents."""
    from .report import histogram_png

    measured = -volts / spec["tia"]["transimpedance_ohm"]  # TIA: out = -Z * I
    v = block_vectors(spec)
    if spec["cell"]["type"] == "1t1r":
        golden = tile_currents_1t1r(v, spec["gpos"], spec["gneg"], spec["cell"], spec["table"], spec["tia"],
                                    spec["rf_ohm"])
    else:
        golden = tile_currents(v, spec["gpos"], spec["gneg"])
    err = measured - golden
    one = lsb(spec["adc_full_scale_a"], spec["adc_bits"])
    tol = tolerance(spec["adc_full_scale_a"], spec["adc_bits"], golden, spec["reltol"], spec["abstol"],
                    spec["tolerance_lsb"])
    max_err = float(np.max(np.abs(err))) if err.size else 0.0
    png = histogram_png(spec["name"], (err / one).ravel(), tol / one)
    return {
        "name": spec["name"], "passed": bool(max_err <= tol), "vectors": int(spec["vectors"]),
        "max_abs_err": max_err, "rms_err": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
        "within_lsb": float(np.mean(np.abs(err) <= one)) if err.size else 1.0,
        "tolerance": tol, "lsb": one, "max_abs_current": float(np.max(np.abs(golden))) if golden.size else 0.0,
        "seconds": seconds, "error": None, "simulator": simulator,
        "histogram_png": base64.b64encode(png).decode(),
    }


def verify_block(spec: dict) -> dict:
    """One block, in this process, chunk after chunk (for benchmarks and library users)."""
    return evaluate_chunks(spec, [simulate_chunk({**spec, "lo": lo, "hi": hi}) for lo, hi in chunks(spec["vectors"])])


def evaluate_chunks(spec: dict, got: list[dict]) -> dict:
    """:func:`evaluate_block` on a block's chunk results, given in vector order."""
    return evaluate_block(spec, np.concatenate([g["volts"] for g in got]), sum(g["seconds"] for g in got),
                          got[0]["simulator"])


def chunks(vectors: int, size: int = CHUNK) -> list[tuple[int, int]]:
    return [(lo, min(vectors, lo + size)) for lo in range(0, vectors, size)]


def write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(json_text(obj))
    os.replace(tmp, path)


def _cache_key(spec: dict, simulator: str) -> str:
    h = hashlib.sha256()
    for k in ("gpos", "gneg"):
        h.update(np.ascontiguousarray(spec[k]).tobytes())
    h.update(spec["deck"].encode())
    if spec.get("table"):
        for k in sorted(spec["table"]):
            h.update(np.ascontiguousarray(spec["table"][k]).tobytes())
    rest = {k: v for k, v in spec.items() if k not in ("gpos", "gneg", "deck", "where", "table")}
    h.update(json.dumps({"spec": rest, "simulator": simulator, "amsc": __version__}, sort_keys=True).encode())
    return h.hexdigest()


def block_spec(out: Path, manifest: dict, t: dict, index: int, vectors: int, seed: int, tolerance_lsb: float,
               engine_name: str) -> dict:
    """Everything one tile's verification needs, self-contained (the deck with its includes
    inlined, the conductances, the numbers): it runs the same in a local worker or on Dask."""
    pdk = manifest["pdk"]
    return {
        "name": t["name"], "index": index, "where": t["testbench"], "deck": read_deck(out / t["testbench"]),
        "gpos": np.load(out / t["conductances"]["gpos"], allow_pickle=False),
        "gneg": np.load(out / t["conductances"]["gneg"], allow_pickle=False),
        "rf_ohm": t["rf_ohm"], "adc_full_scale_a": t["adc_full_scale_a"], "adc_bits": t["adc_bits"],
        "dac_bits": t["dac_bits"], "v_read": t["v_read"], "vectors": vectors, "seed": seed,
        "reltol": pdk["reltol"], "abstol": pdk["abstol"], "tolerance_lsb": tolerance_lsb,
        "engine": engine_name, "cell": t["cell"], "tia": t["tia"], "bipolar": bool(t.get("bipolar", False)),
        "table": ({key: np.load(out / rel, allow_pickle=False) for key, rel in t["cell"]["table"].items()}
                  if t["cell"]["type"] == "1t1r" else None),
    }


def verify_dir(out: str | Path, jobs: int = 1, vectors: int = 16, seed: int = 0, timeout: float = 600.0,
               engine_name: str = "ngspice", scheduler: str | None = None, tolerance_lsb: float = 1.0,
               use_cache: bool = True, on_block: Callable[[dict, int, int], None] | None = None,
               on_start: Callable[[int, int], None] | None = None) -> dict:
    from ..sim.executor import dask_connect, run_dask, run_local

    if not 1 <= vectors <= MAX_VECTORS:
        raise InputError("--vectors", f"{vectors} is out of range 1..{MAX_VECTORS}")
    if not tolerance_lsb > 0:
        raise InputError("--tolerance-lsb", f"{tolerance_lsb} must be positive")
    out = Path(out)
    manifest = load_compiled(out)
    simulator = engine(engine_name).version  # also fails early, with the install hint, if ngspice is missing
    tiles = sorted(manifest["tiles"], key=lambda t: t["name"])
    specs = [block_spec(out, manifest, t, k, vectors, seed, tolerance_lsb, engine_name) for k, t in enumerate(tiles)]
    cache = out / CACHE_DIR
    blocks: list[dict | None] = [None] * len(specs)
    keys = [_cache_key(s, simulator) for s in specs]
    todo = []
    for k, key in enumerate(keys):
        hit = cache / f"{key}.json"
        if use_cache and hit.is_file():
            try:
                blocks[k] = {**json.loads(hit.read_text()), "cached": True}
                continue
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed
        todo.append(k)
    client = dask_connect(scheduler) if scheduler and todo else None
    done = [len(specs) - len(todo)]
    if on_start is not None:
        on_start(len(specs), done[0])

    tasks = [{**specs[k], "lo": lo, "hi": hi} for k in todo for lo, hi in chunks(vectors)]
    # longest first: the biggest tiles start first, so the last task to finish is a short one
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i]["gpos"].size * (tasks[i]["hi"] - tasks[i]["lo"]))
    tasks = [tasks[i] for i in order]
    pending = {k: len(chunks(vectors)) for k in todo}
    parts: dict[int, dict] = {k: {} for k in todo}
    errors: dict[int, str] = {}

    def finished(j: int, res: tuple) -> None:
        k = tasks[j]["index"]
        status, val = res
        if status == "ok":
            parts[k][tasks[j]["lo"]] = val
        else:
            errors.setdefault(k, val)
        pending[k] -= 1
        if pending[k]:
            return
        if k in errors:
            blocks[k] = {"name": specs[k]["name"], "passed": False, "vectors": vectors, "max_abs_err": None,
                         "rms_err": None, "within_lsb": None, "tolerance": None, "seconds": None,
                         "error": errors[k], "cached": False}
        else:
            val = evaluate_chunks(specs[k], [parts[k][lo] for lo in sorted(parts[k])])
            blocks[k] = {**val, "cached": False}
            if use_cache:
                cache.mkdir(exist_ok=True)
                write_json_atomic(cache / f"{keys[k]}.json", val)
        done[0] += 1
        if on_block is not None:
            on_block(blocks[k], done[0], len(specs))

    t0 = time.perf_counter()
    if client is not None:
        run_dask(simulate_chunk, tasks, client, timeout, on_done=finished)
    elif tasks:
        run_local(simulate_chunk, tasks, jobs, timeout, on_done=finished, init=partial(warm_up, engine_name))
    report = {
        "passed": bool(blocks) and all(b["passed"] for b in blocks),
        "design": manifest.get("design"),
        "engine": engine_name,
        "simulator": simulator,
        "seed": seed,
        "vectors": vectors,
        "tolerance_lsb": tolerance_lsb,
        "tolerance_rule": "tolerance_lsb * ADC LSB (2*I_fs/2^adc_bits) + reltol*max|I| + abstol",
        "simulated": len(todo),
        "blocks": [{k: v for k, v in b.items() if k != "histogram_png"} for b in blocks],
    }
    write_json_atomic(out / "verify.json", report)
    from .report import write_html

    write_html(out, report, {b["name"]: base64.b64decode(b["histogram_png"]) for b in blocks
                             if b.get("histogram_png")})
    report["seconds"] = time.perf_counter() - t0
    return report
