"""amsc rtl-sim: stream images through the generated chip in Icarus Verilog and check every output
bit-exactly against the numpy model of the quantized network (compiler/backend/qmodel.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..backend.qmodel import input_codes, load_program, run_program
from ..backend.verilog import link_in_bits
from ..errors import InputError, SimulationError, ToolError
from ..frontend.common import check_labels, load_labels, load_samples
from ..eval.run import HostSide
from ..design import confined, load_compiled, require_network, write_json_atomic

#: Refuse more images than this in one run (each is a few thousand clock cycles).
MAX_IMAGES = 100_000


def rtl_sim(out: str | Path, inputs: str | Path, labels: str | Path | None = None, limit: int | None = None,
            timeout: float = 1800.0) -> dict:
    out = Path(out)
    manifest = load_compiled(out)
    require_network(out, manifest, "rtl-sim")
    dp = manifest.get("rtl_datapath", {})
    if not dp.get("generated"):
        raise InputError(out, f"this design has no generated datapath ({dp.get('reason', 'unknown reason')})")
    if not dp.get("rtl_sim", {"generated": True})["generated"]:
        raise InputError(out, f"this design has no RTL simulation files ({dp['rtl_sim']['reason']})")
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise ToolError(tool, "Icarus Verilog is not installed; run 'make setup' (Debian: apt-get install iverilog)")
    prog = load_program(out)
    x = load_samples(inputs, prog["input"]["shape"], "inputs", flat_ok=True)
    x_all_n = x.shape[0]
    n = x.shape[0] if limit is None else min(limit, x.shape[0])
    if not 1 <= n <= MAX_IMAGES:
        raise InputError(inputs, f"{n} images; expected 1..{MAX_IMAGES}")
    x = x[:n]
    y = None
    if labels is not None:
        y = load_labels(labels, x_all_n)[:n]
    streams: list = []
    host = HostSide(out, {prog["input_value"]: np.asarray(x, dtype=np.float64)})
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
        shutil.copy(rtl / "sim" / "scan.mem", tmp / "scan.mem")
        bits = link_in_bits(prog)
        width = (bits + 3) // 4   # hex digits; signed codes as two's complement of in_data's width
        (tmp / "stimulus.mem").write_text("".join(f"{int(c) & ((1 << bits) - 1):0{width}x}\n"
                                                  for c in stim.reshape(-1)))
        r = subprocess.run(["iverilog", "-g2005", "-o", str(tmp / "sim"), f"-Ptb.N_IMAGES={n}", *srcs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SimulationError(out / "rtl", f"iverilog failed: {(r.stderr or r.stdout).strip().splitlines()[0]}")
        try:
            r = subprocess.run(["vvp", "-n", str(tmp / "sim")], capture_output=True, text=True, cwd=tmp, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SimulationError(out / "rtl", f"vvp did not finish within {timeout:g} s") from None
        if "TAGERR" in r.stdout:
            raise SimulationError(out / "rtl", "the chip's stream tags differ from the program's stream order: "
                                  + r.stdout.strip().splitlines()[0])
        if "DONE" not in r.stdout:
            raise SimulationError(out / "rtl", f"simulation did not finish: {(r.stdout + r.stderr).strip()[-300:]}")
        got = np.array([int(v) for v in (tmp / "outputs.txt").read_text().split()], dtype=np.int64)
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
        "seconds": seconds,
    }
    report["streams"] = len(streams)
    if y is not None:   # the chip's output stream: the last one it sends
        last = got[:, want.shape[1] - out_codes.shape[1]:]
        report["accuracy_rtl"] = float(np.mean(last.argmax(1) == y))
        report["accuracy_model"] = float(np.mean(out_codes.argmax(1) == y))
    write_json_atomic(out / "rtl_sim.json", report)
    return report
