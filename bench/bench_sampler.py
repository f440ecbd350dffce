#!/usr/bin/env python3
"""Benchmark: energy and time per sample of a generative circuit, against a digital sampler on this CPU.

designs/flow_moons (a flow-matching model that carries N(0, I) noise to two moons) is compiled and
`amsc evaluate` pushes its noise samples through the ngspice transient: per sample, the energy drawn
from the supply (from the simulated currents) and the circuit time. The same quantized model then
runs as a digital sampler on this CPU (`compiler.ir.dynamics.sample_rk4`: classical Runge-Kutta in
numpy, batched and one sample at a time), with the fewest steps of STEPS whose samples are as close
to solve_ivp as the circuit's are (so both samplers deliver the same quality); its wall and CPU time
per sample are measured, and its samples' energy distance to the data is set beside the circuit's.

The CPU's energy per sample is measured with RAPL (/sys/class/powercap/intel-rapl:*/energy_uj, the
package counters) when the machine exposes them; otherwise (a VM, as on the project's machines) it
is an estimate, marked as one: the sampler's CPU time times one core's share of a server CPU's
thermal design power, CORE_W (Intel Xeon Platinum 8480+, 350 W TDP over 56 cores, Intel ARK;
`--core-watts` sets another). Writes bench/results/sampler.json."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, amsc, parser, save

sys.path.insert(0, str(ROOT))

#: the digital sampler's step counts, tried in order
STEPS = (8, 12, 16, 24, 32, 48, 64, 100, 200)
#: one core's share of a server CPU's thermal design power: Xeon Platinum 8480+, 350 W / 56 cores (Intel ARK)
CORE_W = 350.0 / 56
RAPL = Path("/sys/class/powercap")


def rapl_counters() -> list[Path]:
    """The readable package energy counters (intel-rapl:N/energy_uj), or none."""
    out = []
    for p in sorted(RAPL.glob("intel-rapl:*/energy_uj")) if RAPL.is_dir() else []:
        if p.parent.name.count(":") == 1:
            try:
                int(p.read_text())
                out.append(p)
            except (OSError, ValueError):
                pass
    return out


def rapl_read(counters: list[Path]) -> int:
    return sum(int(p.read_text()) for p in counters)


def timed(fn, repeat: int, counters: list[Path]) -> dict:
    """The best of ``repeat`` runs of fn(): wall and CPU seconds, and RAPL joules where readable."""
    best = None
    for _ in range(repeat):
        e0 = rapl_read(counters) if counters else None
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        e = (rapl_read(counters) - e0) * 1e-6 if counters else None
        if best is None or w < best["wall_s"]:
            best = {"wall_s": w, "cpu_s": c, "rapl_j": e}
    return best


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--samples", type=int, default=500, help="noise samples through ngspice (default: all 500)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--core-watts", type=float, default=CORE_W,
                    help=f"one core's power for the CPU energy estimate without RAPL (default {CORE_W:.2f} W)")
    args = ap.parse_args()
    samples = 6 if args.smoke else args.samples

    from compiler.design import load_compiled
    from compiler.ir.dynamics import energy_distance, sample_rk4
    from compiler.verify.dynamics import load_design

    d = ROOT / "designs" / "flow_moons"
    noise, data = np.load(d / "noise.npy")[:samples], np.load(d / "data.npy")
    with tempfile.TemporaryDirectory(prefix="amsc_sampler_") as tmp:
        out = Path(tmp) / "flow"
        amsc("compile", d / "dynamics.yaml", "-o", out)
        np.save(Path(tmp) / "noise.npy", noise)
        amsc("evaluate", out, "--inputs", Path(tmp) / "noise.npy", "--data", d / "data.npy", "--jobs", args.jobs)
        ev = json.loads((out / "eval.json").read_text())
        model, Wq = load_design(out, load_compiled(out))
    runs = ev["per_run"]
    x_spice = np.array([r["final_spice"] for r in runs])
    x_ref = np.array([r["final_ref"] for r in runs])            # solve_ivp on the quantized model
    circuit = {"energy_per_sample_j": ev["energy_per_run_j"],
               "dynamic_per_sample_j": float(np.mean([r["dynamic_j"] for r in runs])),
               "time_per_sample_s": float(np.mean([r["duration_s"] for r in runs])),
               "max_err_vs_solve_ivp": float(np.abs(x_spice - x_ref).max()),
               "energy_distance_to_data": ev["generation"]["energy_distance_spice"]}

    # the fewest steps whose samples are as close to solve_ivp as the circuit's (else the most, and said so)
    for steps in STEPS:
        x_rk = sample_rk4(model, Wq, noise, steps)
        matched = bool(np.abs(x_rk - x_ref).max() <= circuit["max_err_vs_solve_ivp"])
        if matched:
            break
    if not matched:
        print(f"note: {steps} steps do not reach the circuit's accuracy; the digital sampler is timed at them")
    counters = rapl_counters()
    repeat = 2 if args.smoke else 5
    batch = timed(lambda: sample_rk4(model, Wq, noise, steps), repeat, counters)
    n_one = min(len(noise), 50)
    one = timed(lambda: [sample_rk4(model, Wq, noise[k:k + 1], steps) for k in range(n_one)], repeat, counters)
    digital = {"steps": steps, "as_accurate_as_circuit": matched, "max_err_vs_solve_ivp": float(np.abs(x_rk - x_ref).max()),
               "energy_distance_to_data": energy_distance(x_rk, data),
               "batch": {"samples": len(noise), "wall_per_sample_s": batch["wall_s"] / len(noise),
                         "cpu_per_sample_s": batch["cpu_s"] / len(noise)},
               "single": {"samples": n_one, "wall_per_sample_s": one["wall_s"] / n_one,
                          "cpu_per_sample_s": one["cpu_s"] / n_one}}
    for key, t, n in (("batch", batch, len(noise)), ("single", one, n_one)):
        if t["rapl_j"] is not None:
            digital[key].update(energy_per_sample_j=t["rapl_j"] / n, energy_source="measured: RAPL package counters")
        else:
            why = " (Xeon Platinum 8480+: 350 W TDP / 56 cores, Intel ARK)" if args.core_watts == CORE_W else ""
            digital[key].update(energy_per_sample_j=t["cpu_s"] * args.core_watts / n,
                                energy_source=f"estimated (no RAPL here): CPU time x {args.core_watts:.3g} W a core{why}")
    res = {"design": "flow_moons", "samples": len(noise), "circuit": circuit, "digital": digital,
           "rapl": bool(counters),
           "cpu_over_circuit_energy_batch": digital["batch"]["energy_per_sample_j"] / circuit["energy_per_sample_j"]}
    for key in ("batch", "single"):
        g = digital[key]
        print(f"digital sampler ({key}, RK4 {steps} steps): {g['wall_per_sample_s'] * 1e6:.1f} us wall, "
              f"{g['cpu_per_sample_s'] * 1e6:.1f} us CPU, {g['energy_per_sample_j'] * 1e6:.3g} uJ a sample "
              f"({g['energy_source'].split(':')[0]})")
    print(f"circuit (ngspice, {len(noise)} samples): {circuit['time_per_sample_s'] * 1e6:.1f} us, "
          f"{circuit['energy_per_sample_j'] * 1e6:.3g} uJ a sample ({circuit['dynamic_per_sample_j'] * 1e9:.3g} nJ "
          f"beyond the quiescent power); energy distance to the data: circuit "
          f"{circuit['energy_distance_to_data']:.4g}, digital {digital['energy_distance_to_data']:.4g}")
    print(f"CPU (batched) / circuit energy per sample: {res['cpu_over_circuit_energy_batch']:.3g}x")
    print(f"wrote {save('sampler', res, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
