"""amsc rtl-sim: stream images through the generated chip in a Verilog simulator and check every
output bit-exactly against the numpy model of the quantized network (compiler/backend/qmodel.py).

Two simulators run the same testbench (``rtl/sim/tb.v`` with the behavioural macro models):
Icarus Verilog (``iverilog`` + ``vvp``, an interpreter: no build step, slow on large designs) and
Verilator (``verilator --binary --timing``: the design compiled to C++, minutes to build, then
orders of magnitude faster per cycle). ``--simulator auto`` (the default) takes Verilator when it is
installed and Icarus would take longer than Verilator's build: the run's clocks (the scan chain's
bits unless they are preloaded, then every image's cycles as the compiler counts them, manifest
``rtl_datapath.cycles_per_input``) times the design's tiles, at the rates measured on this
project's designs (ICARUS_SECONDS_PER_TILE_CLOCK, VERILATOR_BUILD_SECONDS). Icarus otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..backend.qmodel import input_codes, load_program, run_program
from ..backend.verilog import link_in_bits, preload_files, scan_registers
from ..errors import InputError, SimulationError, ToolError
from ..frontend.common import check_labels, load_labels, load_samples
from ..eval.run import HostSide
from ..design import confined, load_compiled, require_network, write_json_atomic

#: Refuse more images than this in one run (each is a few thousand clock cycles).
MAX_IMAGES = 100_000
SIMULATORS = ("auto", "icarus", "verilator")
SCAN_MODES = ("auto", "chain", "preload")
#: ``--scan auto``: preload the registers above this many scan-chain bits (each bit is a clock of the
#: whole design; SqueezeNet's 1e7 bits would take longer than its image)
AUTO_PRELOAD_BITS = 1 << 20
#: ``auto`` estimates both simulators' time, from measurements on this project's designs (2-core VM):
#: an Icarus clock costs about 2.6e-5 s per tile of the design (cnn_digits, 7 tiles: 17,700 clocks in
#: 3.2 s; unet_small: 227,584 clocks in 130 s), a Verilator build about 20 s plus 0.8 s per tile
#: (cnn_digits 20 s, SqueezeNet's 635 tiles 8 min 44 s) and its run far less than either. A small
#: design's one-unit build (VERILATOR_ONE_UNIT_BYTES) takes less (about 3 s plus 0.9 s per tile:
#: cnn_digits 7.6 s, unet_small 19.7 s), so auto errs towards Icarus on runs of a few seconds; an
#: Icarus clock's cost varies several times between designs of the same tiles (a scan shift is
#: cheaper than a datapath clock), which a better estimate would have to model first
ICARUS_SECONDS_PER_TILE_CLOCK = 2.6e-5
VERILATOR_BUILD_SECONDS = (20.0, 0.8)
#: On at most two cores, Verilator's C++ of a design whose Verilog is at most this many bytes is
#: compiled as one unit (make VM_PARALLEL_BUILDS=0) instead of one g++ a generated file: each file
#: parses Verilator's headers again, which on small designs is most of the build's CPU. Measured on
#: this 2-core VM (2 jobs): cnn_digits (37 files) 21 -> 9.5 s of CPU, 12.6 -> 7.6 s; unet_small's
#: 269 KB 46 -> 21 s of CPU, 27.8 -> 19.7 s, at 650 MB instead of 270 MB of memory. On more cores the
#: parallel build finishes first (unet_small: 46 s of CPU over 4 or more cores), and a larger design's
#: one unit would take more memory for longer
VERILATOR_ONE_UNIT_BYTES = 512 << 10
_TOOLS = {"icarus": (("iverilog", "vvp"), "Icarus Verilog is not installed; run 'make setup' (Debian: apt-get "
                                           "install iverilog)"),
          "verilator": (("verilator",), "Verilator is not installed; run 'make setup' (Debian: apt-get install "
                                         "verilator)")}


def run_clocks(dp: dict, images: int) -> int:
    """Clocks of an rtl-sim run from the manifest's ``rtl_datapath``: the scan chain, then the images."""
    return int(dp.get("rtl_sim", {}).get("scan_bits", 0)) + images * int(dp.get("cycles_per_input", {}).get("total", 0))


def choose_simulator(simulator: str, clocks: int = 0, tiles: int = 1) -> str:
    """The simulator to run: the one named (which must be installed), or by the run's size."""
    if simulator not in SIMULATORS:
        raise InputError("--simulator", f"'{simulator}'; expected one of {', '.join(SIMULATORS)}")
    if simulator == "auto":
        icarus_s = clocks * max(1, tiles) * ICARUS_SECONDS_PER_TILE_CLOCK
        build_s = VERILATOR_BUILD_SECONDS[0] + VERILATOR_BUILD_SECONDS[1] * tiles
        simulator = "verilator" if icarus_s > build_s and shutil.which("verilator") is not None else "icarus"
    tools, hint = _TOOLS[simulator]
    for tool in tools:
        if shutil.which(tool) is None:
            raise ToolError(tool, hint)
    return simulator


def _build_and_run(simulator: str, srcs: list[str], n: int, tmp: Path, out: Path, timeout: float,
                   plusargs: list[str], progress) -> tuple[subprocess.CompletedProcess, float, float, str | None]:
    """Build the testbench with ``simulator`` in ``tmp`` and run it there (it reads scan.mem, or the
    preload files with ``+preload``, and stimulus.mem, and writes outputs.txt): the finished run, the
    seconds of the build and the run, and how Verilator's C++ was compiled (None for Icarus).
    ``progress(phase, done, total)`` hears of the build and the run as each starts."""
    t0 = time.perf_counter()
    build = None
    progress(f"{simulator} build", 0, 2)
    if simulator == "icarus":
        r = subprocess.run(["iverilog", "-g2005", "-o", str(tmp / "sim"), f"-Ptb.N_IMAGES={n}", *srcs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SimulationError(out / "rtl", f"iverilog failed: {(r.stderr or r.stdout).strip().splitlines()[0]}")
        cmd = ["vvp", "-n", str(tmp / "sim"), *plusargs]
    else:
        jobs = max(1, min(os.cpu_count() or 1, 8))
        one = jobs <= 2 and sum(Path(p).stat().st_size for p in srcs) <= VERILATOR_ONE_UNIT_BYTES
        build = "one unit" if one else f"{jobs} job(s)"
        try:
            r = subprocess.run(["verilator", "--binary", "--timing", "-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                                "--top-module", "tb", f"-GN_IMAGES={n}", "-Mdir", str(tmp / "obj"), "-j", str(jobs),
                                *(["-MAKEFLAGS", "VM_PARALLEL_BUILDS=0"] if one else []), *srcs],
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SimulationError(out / "rtl", f"verilator did not build the testbench within {timeout:g} s") from None
        if r.returncode != 0 or not (tmp / "obj" / "Vtb").is_file():
            lines = [ln for ln in (r.stderr or r.stdout).splitlines() if "%Error" in ln] or (r.stderr or r.stdout).strip().splitlines() or ["?"]
            raise SimulationError(out / "rtl", f"verilator failed: {lines[0]}")
        cmd = [str(tmp / "obj" / "Vtb"), *plusargs]
    t1 = time.perf_counter()
    progress(f"{simulator} run ({n} image(s))", 1, 2)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=timeout)
        return r, t1 - t0, time.perf_counter() - t1, build
    except subprocess.TimeoutExpired:
        raise SimulationError(out / "rtl", f"{'vvp' if simulator == 'icarus' else 'the Verilator model'} did not "
                                           f"finish within {timeout:g} s") from None


def rtl_sim(out: str | Path, inputs: str | Path, labels: str | Path | None = None, limit: int | None = None,
            timeout: float = 1800.0, simulator: str = "auto", scan: str = "auto", progress=None) -> dict:
    """Stream ``inputs`` through OUT's chip RTL and compare with the numpy model; ``scan``: program
    the weights by shifting the scan chain (``chain``), by loading every register with what the
    shifting would leave in it (``preload``: the testbench's ``+preload``; the chain's shifting is
    what the other designs check), or ``auto``: preload above AUTO_PRELOAD_BITS bits.
    ``progress(phase, done, total)``, if given, hears of each phase: the numpy model, the
    simulator's build and its run (the CLI's progress bar)."""
    out = Path(out)
    progress = progress or (lambda *_: None)
    manifest = load_compiled(out)
    require_network(out, manifest, "rtl-sim")
    dp = manifest.get("rtl_datapath", {})
    if not dp.get("generated"):
        raise InputError(out, f"this design has no generated datapath ({dp.get('reason', 'unknown reason')})")
    if not dp.get("rtl_sim", {"generated": True})["generated"]:
        raise InputError(out, f"this design has no RTL simulation files ({dp['rtl_sim']['reason']})")
    if simulator != "auto":     # a bad or missing simulator is refused before the inputs are read
        simulator = choose_simulator(simulator)
    if scan not in SCAN_MODES:
        raise InputError("--scan", f"'{scan}'; expected one of {', '.join(SCAN_MODES)}")
    scan_len = int(dp.get("rtl_sim", {}).get("scan_bits", 0))
    preload = scan == "preload" or (scan == "auto" and scan_len > AUTO_PRELOAD_BITS)
    prog = load_program(out)
    x = load_samples(inputs, prog["input"]["shape"], "inputs", flat_ok=True)
    x_all_n = x.shape[0]
    n = x.shape[0] if limit is None else min(limit, x.shape[0])
    if not 1 <= n <= MAX_IMAGES:
        raise InputError(inputs, f"{n} images; expected 1..{MAX_IMAGES}")
    x = x[:n]
    if simulator == "auto":
        clocks = run_clocks(dp, n) - (scan_len if preload else 0)
        simulator = choose_simulator(simulator, clocks, len(manifest.get("tiles", [])))
    y = None
    if labels is not None:
        y = load_labels(labels, x_all_n)[:n]
    streams: list = []
    host = HostSide(out, {prog["input_value"]: np.asarray(x, dtype=np.float64)})
    progress(f"numpy model ({n} image(s))", 0, 1)
    out_codes = run_program(prog, input_codes(prog, x), host=host, streams=streams)
    if y is not None:
        check_labels(labels, y, out_codes.shape[1])
    # the host's side of the link, image by image: what it streams in (the input, and each host
    # segment's result coded as the chip reads it), and what the chip must send
    stim = np.concatenate([c for d, c in streams if d == "in"], axis=1)
    want = np.concatenate([c for d, c in streams if d == "out"], axis=1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amsc-rtlsim-") as tmp:
        tmp = Path(tmp)
        rtl = out / "rtl"
        files_f = rtl / "sim" / "files.f"
        srcs = [str(confined(rtl, p, files_f, "Verilog source")) for p in files_f.read_text().split()]
        if preload:
            if b'$test$plusargs("preload")' not in (rtl / "sim" / "tb.v").read_bytes():
                raise InputError(out, "its testbench cannot preload the scan registers (compiled by an older amsc): "
                                      "recompile it, or use --scan chain")
            stream = np.frombuffer((rtl / "sim" / "scan.mem").read_bytes(), np.uint8)[0::2] - ord("0")
            try:
                for name, text in preload_files(stream, scan_registers(prog, dp.get("scan_order", []))):
                    (tmp / name).write_bytes(text)
            except ValueError as e:
                raise InputError(rtl / "sim" / "scan.mem", f"does not match the design's scan chain: {e}") from None
            del stream
        else:
            shutil.copy(rtl / "sim" / "scan.mem", tmp / "scan.mem")
        bits = link_in_bits(prog)
        width = (bits + 3) // 4   # hex digits; signed codes as two's complement of in_data's width
        (tmp / "stimulus.mem").write_text("".join(f"{int(c) & ((1 << bits) - 1):0{width}x}\n"
                                                  for c in stim.reshape(-1)))
        r, t_build, t_run, build = _build_and_run(simulator, srcs, n, tmp, out, timeout,
                                                  ["+preload"] if preload else [], progress)
        if "TAGERR" in r.stdout:
            raise SimulationError(out / "rtl", "the chip's stream tags differ from the program's stream order: "
                                  + r.stdout.strip().splitlines()[0])
        if "DONE" not in r.stdout:
            raise SimulationError(out / "rtl", f"simulation did not finish: {(r.stdout + r.stderr).strip()[-300:]}")
        got = np.array([int(v) for v in (tmp / "outputs.txt").read_text().split()], dtype=np.int64)
        # the testbench's last line: DONE images=N cycles=C span=S latency=L interval=I
        done = dict(w.split("=", 1) for w in r.stdout.split() if "=" in w)
        cycles, span, lat, gap = (int(done[k]) if k in done else None
                                  for k in ("cycles", "span", "latency", "interval"))
    seconds = time.perf_counter() - t0
    if got.size != want.size:
        raise SimulationError(out / "rtl", f"the testbench wrote {got.size} outputs, expected {want.size}")
    got = got.reshape(want.shape)
    bad = np.argwhere(got != want)
    report = {
        "images": int(n), "outputs_per_image": int(want.shape[1]), "bit_exact": bool(bad.size == 0),
        "mismatches": int(bad.shape[0]), "first_mismatch": None if bad.size == 0 else {
            "image": int(bad[0][0]), "output": int(bad[0][1]), "rtl": int(got[tuple(bad[0])]),
            "model": int(want[tuple(bad[0])])},
        "seconds": seconds, "simulator": simulator, "build_seconds": t_build, "run_seconds": t_run,
        # Verilator's C++: one compile unit or a g++ a file over the jobs (VERILATOR_ONE_UNIT_BYTES)
        **({"build": build} if build else {}),
        "scan": "preload" if preload else "chain", "scan_bits": scan_len,
        "cycles_waiting_for_outputs": cycles,
    }
    if span is not None:   # clocks per input, measured against the compiler's count (backend/verilog.rtl_cycles)
        counted = dp.get("cycles_per_input", {})
        if lat is None:   # a testbench from before the pipeline: one input at a time, the span's share
            lat = gap = span / n
        # an input's clocks in a stream of inputs (from one image's last result to the next's; the
        # first image's with one image) and through the chip (its first beat in to its last result)
        want_gap = counted.get("interval", counted.get("total"))
        want_lat = counted.get("latency", counted.get("total"))
        report["cycles_per_input"] = gap
        report["cycles_per_input_predicted"] = want_gap if n > 1 else want_lat
        report["latency_cycles"] = lat
        report["latency_cycles_predicted"] = want_lat
        report["lanes"] = dp.get("lanes", 1)
        report["step_lanes"] = dp.get("step_lanes", [report["lanes"]])
        report["pipeline_stages"] = dp.get("pipeline", 1)
        if want_gap and want_lat:
            report["cycles_rel_err"] = max(abs(gap - report["cycles_per_input_predicted"]) / want_gap,
                                           abs(lat - want_lat) / want_lat)
    report["streams"] = len(streams)
    if y is not None:   # the chip's output stream: the last one it sends
        last = got[:, want.shape[1] - out_codes.shape[1]:]
        report["accuracy_rtl"] = float(np.mean(last.argmax(1) == y))
        report["accuracy_model"] = float(np.mean(out_codes.argmax(1) == y))
    write_json_atomic(out / "rtl_sim.json", report)
    return report
