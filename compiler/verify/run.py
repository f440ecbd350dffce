"""amsc verify: simulate every tile testbench and compare it with the numpy golden model.

Each block is self-contained (deck text, conductances, settings), so it runs the same in a local
worker process or on a Dask worker. Results are cached in ``OUT/.verify-cache/`` under a key made of
everything that decides them, so an unchanged second run simulates nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..backend.readout import entries as readout_entries
from ..design import foreign_files, load_compiled, write_json_atomic
from ..errors import InputError, SimulationError
from ..frontend.common import NPY_ERRORS
from .checks import lsb, tolerance
from ..sim.netlist import read_deck
from .golden import dac_vectors, tile_currents, tile_currents_1t1r
from .report import DETAIL_MAX

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


def warm_up(engine_name: str) -> None:
    """Worker start-up: load the simulator and the plotting code before the first block."""
    from . import report  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401

    engine(engine_name)


#: seconds a readout circuit's transient may take (not --timeout, a tile's: a readout of 128
#: channels takes 18 s on the 2-core machine, one of 8 under a second)
READOUT_TIMEOUT = 3600.0

_SPEC: dict = {}


def meta_spec(meta: dict) -> dict:
    """The full block spec of a task's tile, loaded from its output folder (see :func:`block_spec`)."""
    return block_spec(Path(meta["out"]), {"pdk": meta["pdk"]}, meta["tile"], meta["index"], meta["vectors"],
                      meta["seed"], meta["tolerance_lsb"], meta["engine"])


def task_spec(task: dict) -> dict:
    """The full block spec of a task: carried by the task (Dask), or loaded from the output folder
    (local workers, which keep the last one: a block's chunks usually follow each other)."""
    if "deck" in task:
        return task
    key = (task["out"], task["name"])
    if key not in _SPEC:
        _SPEC.clear()
        _SPEC[key] = meta_spec(task)
    return _SPEC[key]


def simulate_chunk(task: dict) -> dict:
    """Simulate vectors ``[lo, hi)`` of one tile (runs in a worker); returns the TIA output voltages.

    A ``transfer`` task measures a linear tile's transfer instead: one sweep point with every word
    line at 0 V and one per word line at V_read alone. A 1R tile (resistors, ideal or finite-gain
    linear TIAs, wire mesh) is a linear circuit, so by superposition the outputs of any input vector
    are ``out(0) + v @ T``, with ``T`` those responses less ``out(0)``, over V_read. With more vectors
    than word lines this costs rows + 1 operating points instead of one per vector."""
    t0 = time.perf_counter()
    spec = task_spec(task)
    rows, cols = spec["gpos"].shape
    v = block_vectors(spec)[task["lo"]:task["hi"]]
    eng = engine(spec["engine"])
    src, probes = [f"VIN_{i}" for i in range(rows)], [f"out_{j}" for j in range(cols)]
    if task.get("mode") == "transfer":
        volts = superpose(measure_transfer(eng, spec["deck"], spec["where"], rows, cols, spec["v_read"]), v)
    else:
        volts = eng.sweep(spec["deck"], spec["where"], src, v, probes)
    return {"volts": volts, "simulator": eng.version, "seconds": time.perf_counter() - t0}


def measure_transfer(eng, deck: str, where: str, rows: int, cols: int, v_read: float,
                     probes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(out(0), T)`` of a linear tile's testbench: the outputs with every word line at 0 V, and
    per word line the change of the outputs per volt (rows + 1 operating points). ``probes``
    replaces the ``cols`` TIA outputs (for example the word-line sources' currents ``I(VIN_i)``)."""
    basis = np.vstack([np.zeros(rows), v_read * np.eye(rows)])
    resp = eng.sweep(deck, where, [f"VIN_{i}" for i in range(rows)], basis,
                     probes or [f"out_{j}" for j in range(cols)])
    return resp[0], (resp[1:] - resp[0]) / v_read


def superpose(transfer: tuple[np.ndarray, np.ndarray], v: np.ndarray) -> np.ndarray:
    """The outputs of a linear tile for word-line voltages ``v`` [vectors, rows], from its transfer."""
    return transfer[0] + v @ transfer[1]


def tile_cells(t: dict) -> int:
    """Word lines x outputs of a tile's manifest entry."""
    return (t["rows"][1] - t["rows"][0]) * (t["cols"][1] - t["cols"][0])


def plan_block(tile: dict | None, vectors: int) -> list[dict]:
    """How a block's vectors are simulated: ``{"lo", "hi", "mode"}`` tasks. A linear (1R) tile with
    more vectors than word lines + 1 is one ``transfer`` task; otherwise (or with no tile entry)
    chunks of CHUNK vectors."""
    if tile is not None and tile["cell"]["type"] == "1r" and vectors > tile["rows"][1] - tile["rows"][0] + 1:
        return [{"lo": 0, "hi": vectors, "mode": "transfer"}]
    return [{"lo": lo, "hi": hi, "mode": "sweep"} for lo, hi in chunks(vectors)]


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
    passed = bool(max_err <= tol)
    # a histogram per block while the report shows every block; at scale only for the failures
    png = histogram_png(spec["name"], (err / one).ravel(), tol / one) if spec.get("histogram", True) or not passed \
        else b""
    return {
        "name": spec["name"], "passed": passed, "vectors": int(spec["vectors"]),
        "max_abs_err": max_err, "rms_err": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
        "within_lsb": float(np.mean(np.abs(err) <= one)) if err.size else 1.0,
        "tolerance": tol, "lsb": one, "max_abs_current": float(np.max(np.abs(golden))) if golden.size else 0.0,
        "seconds": seconds, "error": None, "simulator": simulator,
        "histogram_png": base64.b64encode(png).decode() if png else None,
    }


def verify_block(spec: dict, tile: dict | None = None) -> dict:
    """One block, in this process, task after task (for benchmarks and library users); with the
    tile's manifest entry, planned as 'amsc verify' plans it (see :func:`plan_block`)."""
    return evaluate_chunks(spec, [simulate_chunk({**spec, **p}) for p in plan_block(tile, spec["vectors"])])


def evaluate_chunks(spec: dict, got: list[dict]) -> dict:
    """:func:`evaluate_block` on a block's chunk results, given in vector order."""
    return evaluate_block(spec, np.concatenate([g["volts"] for g in got]), sum(g["seconds"] for g in got),
                          got[0]["simulator"])


def chunks(vectors: int, size: int = CHUNK) -> list[tuple[int, int]]:
    return [(lo, min(vectors, lo + size)) for lo in range(0, vectors, size)]


def _cache_key(meta: dict, digests: dict, simulator: str) -> str:
    """Everything that decides a block's result: the digests of its files (testbench, the tile subckt it
    includes, conductances, calibration tables, from the manifest), its settings, the simulator and
    amsc's version. No file is read to compute it."""
    t = meta["tile"]
    files = [t["testbench"], t["subckt_file"], t["conductances"]["gpos"], t["conductances"]["gneg"]]
    if t["cell"]["type"] == "1t1r":
        files += [t["cell"]["table"][k] for k in sorted(t["cell"]["table"])]
    rest = {k: v for k, v in meta.items() if k not in ("out", "tile", "pdk", "histogram")}
    h = hashlib.sha256(json.dumps({"files": [digests.get(f) for f in files], "spec": rest, "tile": t,
                                   "pdk": meta["pdk"], "simulator": simulator, "amsc": __version__},
                                  sort_keys=True).encode())
    return h.hexdigest()


#: what a tile's block holds (a failed one too): a cache entry without them is damaged
BLOCK_KEYS = ("name", "passed", "vectors", "max_abs_err", "rms_err", "within_lsb", "tolerance", "seconds", "error")


def _cache_read(path: Path, need: tuple[str, ...]) -> dict | None:
    """The cache entry at ``path``, or None when it is missing or damaged (not a JSON object with
    every key of ``need``): the block is then simulated again."""
    try:
        val = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return val if isinstance(val, dict) and all(k in val for k in need) else None


def _readout_key(ro: dict, digests: dict, bits: int, tolerance_lsb: float, simulator: str) -> str:
    """A readout circuit's cache key: the digests of its subckt, testbench and inputs, its manifest
    entry, the ADC's bits, the tolerance, ngspice's and amsc's versions."""
    files = [ro["subckt_file"], ro["testbench"], ro["inputs"]]
    h = hashlib.sha256(json.dumps({"files": [digests.get(f) for f in files], "readout": ro, "bits": bits,
                                   "tolerance_lsb": tolerance_lsb, "simulator": simulator, "amsc": __version__},
                                  sort_keys=True).encode())
    return "readout-" + h.hexdigest()


def _readouts(out: Path, circuits: list[dict], bits: int, tolerance_lsb: float, digests: dict, jobs: int,
              cache: Path | None) -> list[dict]:
    """The readout blocks of ``circuits`` (the manifest's readout entries), in their order, each with
    its waveform: from ``cache`` (``OUT/.verify-cache``, the block's JSON and its waveform's .npz)
    where an unchanged circuit was signed off before, the others simulated side by side on ``jobs``
    workers, the most channels first (a simulator failure: SimulationError, in one line)."""
    from ..design.folder import write_bytes_atomic
    from ..sim.executor import run_local
    from ..sim.ngspice import session
    from .readout import RESULT_KEYS, WAVE_KEYS, readout_task

    keys = [_readout_key(ro, digests, bits, tolerance_lsb, session().version) for ro in circuits]
    results: list[dict | None] = [None] * len(circuits)
    for k, key in enumerate(keys):
        hit = _cache_read(cache / f"{key}.json", RESULT_KEYS) if cache is not None else None
        if hit is None or hit["share"] != circuits[k]["share"]:
            continue
        try:
            with np.load(cache / f"{key}.npz", allow_pickle=False) as w:
                wave = {name: w[name] for name in WAVE_KEYS}
        except (*NPY_ERRORS, KeyError):   # a damaged waveform (a bad zip, a missing array): simulated again
            continue
        results[k] = {**hit, "wave": wave, "cached": True}
    todo = sorted((k for k in range(len(circuits)) if results[k] is None), key=lambda k: (-circuits[k]["share"], k))
    ran = run_local(readout_task, [{"out": str(out), "bits": bits, "tolerance_lsb": tolerance_lsb, "ro": circuits[k]}
                                   for k in todo], jobs, READOUT_TIMEOUT) if todo else []
    for k, (status, val) in zip(todo, ran):
        if status != "ok":   # as when it ran here: the simulator's failure, in one line
            raise SimulationError(circuits[k]["testbench"], val)
        results[k] = {**val, "cached": False}
        if cache is not None:
            cache.mkdir(exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, **val["wave"])
            write_bytes_atomic(cache / f"{keys[k]}.npz", buf.getvalue())
            write_json_atomic(cache / f"{keys[k]}.json", {n: v for n, v in val.items() if n != "wave"})
    return results


def select_tiles(tiles: list[dict], k: int | None, seed: int) -> tuple[list[dict], dict | None]:
    """The tiles to sign off: all of them, or a seeded sample of ``k`` that always holds each
    layer's largest tile (most programmed cells) and fills up with tiles drawn at random."""
    if k is None:
        return tiles, None
    if k < 1:
        raise InputError("--sample", f"{k}: expected a positive number of tiles")
    if k >= len(tiles):
        return tiles, {"requested": k, "tiles": len(tiles),
                       "note": f"--sample {k} is at least the design's {len(tiles)} tiles: all of them are verified"}
    largest = {}
    for t in tiles:
        size = tile_cells(t)
        best = largest.get(t["layer"])
        if best is None or size > best[0]:
            largest[t["layer"]] = (size, t["name"])
    chosen = {name for _, name in largest.values()}
    rest = sorted(t["name"] for t in tiles if t["name"] not in chosen)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A4D]))
    extra = max(0, k - len(chosen))
    chosen |= set(rng.choice(rest, size=min(extra, len(rest)), replace=False).tolist()) if extra and rest else set()
    picked = [t for t in tiles if t["name"] in chosen]
    info = {"requested": k, "tiles": len(tiles), "verified": len(picked), "seed": seed,
            "rule": "each layer's largest tile, then a seeded random draw from the rest",
            "names": [t["name"] for t in picked]}
    if len(chosen) > k:
        info["note"] = f"{len(largest)} layers: their largest tiles alone are more than --sample {k}"
    return picked, info


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
               on_start: Callable[[int, int], None] | None = None, sample: int | None = None) -> dict:
    from ..sim.executor import dask_connect, run_dask, run_local

    if not 1 <= vectors <= MAX_VECTORS:
        raise InputError("--vectors", f"{vectors} is out of range 1..{MAX_VECTORS}")
    if not tolerance_lsb > 0:
        raise InputError("--tolerance-lsb", f"{tolerance_lsb} must be positive")
    out = Path(out)
    manifest = load_compiled(out)
    extra = foreign_files(out, manifest)
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        raise InputError(out, f"holds files its manifest does not list: {', '.join(extra[:3])}{more}; verify signs off "
                              "exactly the design amsc wrote (remove them, or recompile)")
    if manifest.get("kind") == "dynamics":
        from .dynamics import verify_dynamics

        if engine_name != "ngspice":
            raise InputError("--engine", "a dynamics design is verified by its ngspice transient; mna solves DC decks")
        if scheduler:
            raise InputError("--scheduler", "a dynamics design is one ngspice transient, run here; a Dask scheduler "
                                            "spreads the tiles of a network")
        return verify_dynamics(out, manifest)
    simulator = engine(engine_name).version  # also fails early, with the install hint, if ngspice is missing
    tiles, sample_info = select_tiles(sorted(manifest["tiles"], key=lambda t: t["name"]), sample, seed)
    digests = {f["path"]: f["sha256"] for f in manifest["files"]}
    index = {t["name"]: k for k, t in enumerate(sorted(manifest["tiles"], key=lambda t: t["name"]))}
    detail = len(tiles) <= DETAIL_MAX
    # a task names its tile; the worker loads the deck and conductances itself, so memory stays
    # one block per worker however many tiles the design has
    metas = [{"name": t["name"], "index": index[t["name"]], "out": str(out.resolve()), "tile": t,
              "pdk": manifest["pdk"], "vectors": vectors, "seed": seed, "tolerance_lsb": tolerance_lsb,
              "engine": engine_name, "histogram": detail} for t in tiles]
    cache = out / CACHE_DIR
    if use_cache and (cache.exists() or cache.is_symlink()) and not cache.is_dir():
        raise InputError(cache, "is not a folder: verify keeps its cache there (remove it, or run with --no-cache)")
    blocks: list[dict | None] = [None] * len(metas)
    keys = [_cache_key(m, digests, simulator) for m in metas]
    todo = []
    for k, key in enumerate(keys):
        hit = _cache_read(cache / f"{key}.json", BLOCK_KEYS) if use_cache else None
        if hit is not None and hit["name"] == metas[k]["name"]:
            blocks[k] = {**hit, "cached": True}
        else:
            todo.append(k)
    client = dask_connect(scheduler) if scheduler and todo else None
    done = [len(metas) - len(todo)]
    if on_start is not None:
        on_start(len(metas), done[0])

    tasks = [{**metas[k], **p} for k in todo for p in plan_block(metas[k]["tile"], vectors)]
    # longest first: the biggest tiles start first, so the last task to finish is a short one
    pos = {m["name"]: k for k, m in enumerate(metas)}
    size = [tile_cells(m["tile"]) for m in metas]
    tasks.sort(key=lambda t: -size[pos[t["name"]]] * (t["hi"] - t["lo"]))
    pending = {k: len(plan_block(metas[k]["tile"], vectors)) for k in todo}
    parts: dict[int, dict] = {k: {} for k in todo}
    errors: dict[int, str] = {}

    def finished(j: int, res: tuple) -> None:
        k = pos[tasks[j]["name"]]
        status, val = res
        if status == "ok":
            parts[k][tasks[j]["lo"]] = val
        else:
            errors.setdefault(k, val)
        pending[k] -= 1
        if pending[k]:
            return
        if k in errors:
            blocks[k] = {"name": metas[k]["name"], "passed": False, "vectors": vectors, "max_abs_err": None,
                         "rms_err": None, "within_lsb": None, "tolerance": None, "seconds": None,
                         "error": errors[k], "cached": False}
        else:
            spec = {**meta_spec(metas[k]), "histogram": detail}
            val = evaluate_chunks(spec, [parts[k][lo] for lo in sorted(parts[k])])
            blocks[k] = {**val, "cached": False}
            if use_cache:
                cache.mkdir(exist_ok=True)
                write_json_atomic(cache / f"{keys[k]}.json", val)
        parts.pop(k, None)
        done[0] += 1
        if on_block is not None:
            on_block(blocks[k], done[0], len(metas))

    t0 = time.perf_counter()
    if client is not None:
        # Dask workers share no file system: each task is given its deck and conductances just
        # before it is submitted, with a bounded number in flight
        run_dask(simulate_chunk, tasks, client, timeout, on_done=finished, prepare=lambda t: {**t, **meta_spec(t)})
    elif tasks:
        run_local(simulate_chunk, tasks, jobs, timeout, on_done=finished, init=partial(warm_up, engine_name))
    readout, others = None, []
    circuits = readout_entries(manifest.get("readout", {}))
    if circuits:
        # one transient in ngspice whatever the tiles' engine: the switches and capacitors are
        # beyond the MNA engine's DC elements; each readout circuit the design has (the design's
        # share and, under --adc-balance on, its layers' and stages' others) from the cache or side by
        # side on the pool, the most channels first
        bits = manifest["tiles"][0]["adc_bits"] if manifest.get("tiles") else 8
        results = _readouts(out, circuits, bits, tolerance_lsb, digests, jobs, cache if use_cache else None)
        readout, *others = results
        for r in others:
            r.pop("wave")
        if others:
            readout["others"] = others
    report = {
        "passed": bool(blocks) and all(b["passed"] for b in blocks)
                  and all(r["passed"] for r in ([readout] if readout else []) + others),
        "design": manifest.get("design"),
        "engine": engine_name,
        "simulator": simulator,
        "seed": seed,
        "vectors": vectors,
        "tolerance_lsb": tolerance_lsb,
        "tolerance_rule": "tolerance_lsb * ADC LSB (2*I_fs/2^adc_bits) + reltol*max|I| + abstol",
        "simulated": len(todo),
        "blocks": [{**{k: v for k, v in b.items() if k != "histogram_png"}, "layer": m["tile"]["layer"]}
                   for b, m in zip(blocks, metas)],
    }
    if sample_info is not None:
        report["sample"] = sample_info
    wave = None
    if readout is not None:
        wave = readout.pop("wave")
        report["readout"] = readout
    write_json_atomic(out / "verify.json", report)
    from .report import readout_png, write_html

    pngs = {b["name"]: base64.b64decode(b["histogram_png"]) for b in blocks if b.get("histogram_png")}
    if wave is not None:
        pngs["readout"] = readout_png(readout, wave)
    write_html(out, report, pngs)
    report["seconds"] = time.perf_counter() - t0
    return report
